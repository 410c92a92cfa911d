"""Reading the history stream: where a resume may start, and the events it must replay."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import redis

from gateway import stream_ids
from gateway.stream_ids import ZERO, StreamId
from shared.constants import HISTORY_STREAM
from shared.realtime import with_bus_id
from shared.redis_replies import stream_entries, text

REPLAY_PAGE = 500


@dataclass(frozen=True)
class StreamInfo:
    last_generated: StreamId
    first_entry: StreamId | None
    length: int
    entries_added: int | None  # Redis 7+: every entry ever added (so: was anything trimmed?)


def read_info(client: redis.Redis) -> StreamInfo:
    """Where the history stream stands; an empty position when it does not exist (yet)."""
    try:
        info = client.xinfo_stream(HISTORY_STREAM)
    except redis.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return StreamInfo(ZERO, None, 0, 0)
        raise
    first = info.get("first-entry")
    added = info.get("entries-added")
    return StreamInfo(
        last_generated=stream_ids.parse(text(info["last-generated-id"])),
        first_entry=stream_ids.parse(text(first[0])) if first else None,
        length=int(info["length"]),
        entries_added=int(added) if added is not None else None,
    )


def can_resume_from(info: StreamInfo, after: StreamId) -> bool:
    """True when every event after ``after`` is still in the history (no silent gap)."""
    if after > info.last_generated:
        return False  # an id this stream never gave out: from another Redis, or made up
    if info.entries_added is not None and info.entries_added == info.length:
        return True  # nothing was ever trimmed
    # Something was trimmed (or Redis < 7 cannot say): only an id inside the kept range is safe.
    if info.first_entry is None:
        return after == info.last_generated
    return after >= stream_ids.predecessor(info.first_entry)


# Counts the entries after ARGV[1] up to ARGV[2] of them, inside Redis (only the number crosses).
_COUNT_AFTER = """
return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
"""


def more_than_after(client: redis.Redis, after: StreamId, limit: int) -> bool:
    """True when the history holds more than ``limit`` entries after ``after`` (reads at most limit+1)."""
    count = client.eval(_COUNT_AFTER, 1, HISTORY_STREAM, stream_ids.format(after), str(limit + 1))
    return int(cast(int, count)) > limit


def replay_entries(
    client: redis.Redis, after: StreamId, until: StreamId, types: frozenset[str]
) -> Iterator[tuple[StreamId, str, str]]:
    """(id, type, event JSON with its id) of each event of ``types`` in (after, until], in order."""
    start = "(" + stream_ids.format(after)
    end = stream_ids.format(until)
    while True:
        page = stream_entries(client.xrange(HISTORY_STREAM, min=start, max=end, count=REPLAY_PAGE))
        if not page:
            return
        for text_id, fields in page:
            event_type = fields["t"]
            if event_type in types:
                yield stream_ids.parse(text_id), event_type, with_bus_id(fields["e"], text_id)
        if len(page) < REPLAY_PAGE:
            return
        start = "(" + page[-1][0]


def tail_entries(client: redis.Redis, up_to: StreamId, count: int) -> list[tuple[StreamId, str, str]]:
    """The last ``count`` events at or before ``up_to``, newest first (what a worker keeps in memory)."""
    if count <= 0:
        return []
    out = []
    for text_id, fields in stream_entries(client.xrevrange(HISTORY_STREAM, max=stream_ids.format(up_to), count=count)):
        event_type = fields.get("t")
        body = fields.get("e")
        if event_type is None or body is None:
            continue  # not an event (the reader skips it as well)
        out.append((stream_ids.parse(text_id), event_type, with_bus_id(body, text_id)))
    return out
