"""The open streams of one gateway process, grouped by frame key (what is written to them)."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.clients import StreamClient
from gateway.frames import FrameKey


class StreamRegistry:
    """Streams by id, and by frame key: the fan-out encodes once per group and writes the same bytes to each."""

    def __init__(self) -> None:
        self.by_id: dict[str, StreamClient] = {}
        self.groups: dict[FrameKey, set[StreamClient]] = {}
        self.total = 0  # streams registered since the process started
        self.peak = 0  # most open at once

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[StreamClient]:
        return iter(list(self.by_id.values()))

    def add(self, client: StreamClient) -> None:
        self.by_id[client.id] = client
        self.groups.setdefault(client.frame_key, set()).add(client)
        self.total += 1
        self.peak = max(self.peak, len(self.by_id))

    def remove(self, client: StreamClient) -> None:
        self.by_id.pop(client.id, None)
        group = self.groups.get(client.frame_key)
        if group is not None:
            group.discard(client)
            if not group:
                del self.groups[client.frame_key]
