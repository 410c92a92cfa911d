"""The recent history a worker keeps in memory, so that a resume needs no Redis round trip.

A worker loads the tail of the history stream once when it starts (``load``) and then extends
it with every entry its one reader takes (``extend``). A client whose cursor falls inside the
kept span is answered from here; only older cursors go to Redis.

Invariant (what makes a resume from memory lossless): every event of the history stream with
an id in ``(floor, read_up_to]`` is in ``entries``, in stream order, and nothing else is.
``floor`` only grows: dropping the oldest entry (past ``max_events`` or older than
``max_age_ms``) moves it up to that entry's id. A cursor ``after`` may be served from memory
exactly when ``floor <= after <= read_up_to``.

Pure: ids, bodies and the clock are passed in; no Redis, no sockets, no sleeping.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from gateway.stream_ids import ZERO, StreamId, predecessor

Entry = tuple[StreamId, str, str]  # (id, type, event JSON with its id)


class RecentHistory:
    """The newest events of the history stream, with the span they cover without a gap."""

    def __init__(self, max_events: int, max_age_ms: float) -> None:
        if max_events < 0:
            raise ValueError(f"max_events must not be negative, got {max_events}")
        if max_age_ms < 0:
            raise ValueError(f"max_age_ms must not be negative, got {max_age_ms}")
        self.max_events = max_events
        self.max_age_ms = max_age_ms
        self.floor: StreamId = ZERO
        self.read_up_to: StreamId = ZERO
        self.loaded = False
        self._ids: list[StreamId] = []
        self._entries: list[Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def load(
        self, newest_first: Iterable[Entry], read_up_to: StreamId, complete: bool, now_ms: float | None = None
    ) -> None:
        """Start from the stream's tail, newest first (as XREVRANGE gives it), up to ``read_up_to``.

        ``complete``: the tail read is the whole stream and nothing was ever trimmed, so no event
        lies before the oldest entry given.
        """
        entries = sorted(e for e in newest_first if e[0] <= read_up_to)
        self._ids = [e[0] for e in entries]
        self._entries = entries
        self.read_up_to = read_up_to
        if complete:
            self.floor = ZERO
        elif entries:
            self.floor = predecessor(entries[0][0])
        else:
            self.floor = read_up_to
        self.loaded = True
        self._trim(now_ms)

    def extend(self, entries: Iterable[Entry], read_up_to: StreamId, now_ms: float | None = None) -> None:
        """Add what the reader took, in stream order; ``read_up_to`` is where it has now read."""
        if read_up_to < self.read_up_to:
            raise ValueError(f"read position went back: {read_up_to} < {self.read_up_to}")
        for entry in entries:
            if entry[0] <= self.read_up_to or entry[0] > read_up_to:
                raise ValueError(f"entry {entry[0]} outside ({self.read_up_to}, {read_up_to}]")
            self._ids.append(entry[0])
            self._entries.append(entry)
        self.read_up_to = read_up_to
        self._trim(now_ms)

    def restart_at(self, read_up_to: StreamId) -> None:
        """Forget everything (a new epoch): memory covers nothing before ``read_up_to``."""
        self._ids, self._entries = [], []
        self.floor = self.read_up_to = read_up_to

    def covers(self, after: StreamId) -> bool:
        """True when every event after ``after`` (up to ``read_up_to``) is held here."""
        return self.loaded and self.floor <= after <= self.read_up_to

    def since(self, after: StreamId, until: StreamId, types: frozenset[str]) -> list[Entry]:
        """The entries of ``types`` in ``(after, until]``, in order; ValueError if not covered."""
        if not self.covers(after):
            raise ValueError(f"cursor {after} is outside the kept span [{self.floor}, {self.read_up_to}]")
        start = bisect.bisect_right(self._ids, after)
        stop = bisect.bisect_right(self._ids, until)
        return [e for e in self._entries[start:stop] if e[1] in types]

    def _trim(self, now_ms: float | None) -> None:
        drop = max(0, len(self._entries) - self.max_events)
        if now_ms is not None:
            oldest_kept = now_ms - self.max_age_ms
            while drop < len(self._ids) and self._ids[drop][0] < oldest_kept:
                drop += 1
        if drop:
            self.floor = max(self.floor, self._ids[drop - 1])
            del self._ids[:drop]
            del self._entries[:drop]

