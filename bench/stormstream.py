"""A storm dashboard's state and how it reads its stream, apart from sockets (``bench.stormworker``).

Every event id read goes into the stream's memory of ids: one already there is a duplicate on
the wire. The dashboard drops repeats with a bounded memory (``SeenIds`` in
``gateway/static/lib/dedupe.js``, the oldest of 5,000 ids forgotten first), so a repeat reaches
the application only when its first copy is more than 5,000 ids back; that is what
``app_dups`` counts. The runner compares the ids each stream saw with the publisher's list for
the events lost.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Any

EVENT_ID = re.compile(rb'"id": ?"(\d{13}-\d+)"')
CURSOR = re.compile(rb"^id: (.*)$", re.M)
RETRY = re.compile(rb"^retry: (\d+)$", re.M)
SEEN_CAPACITY = 5000


class Stream:
    """One dashboard (``index``: its place in this process): socket, cursor, retry, ids seen, what happened."""

    __slots__ = ("index", "source", "channels", "sock", "head", "tail", "live", "cursor", "retry_ms", "attempt",
                 "due", "seen", "inserted", "wire_dups", "app_dups", "resets", "connects", "back_at",
                 "resumed_back", "awaiting")

    def __init__(self, index: int, source: str, channels: str) -> None:
        self.index, self.source, self.channels = index, source, channels
        self.sock: socket.socket | None = None
        self.head = b""  # the request to send, then the response headers as they come
        self.tail = b""  # an unfinished message
        self.live = False
        self.cursor: str | None = None
        self.retry_ms = 3000
        self.attempt = 0
        self.due = 0.0  # monotonic time of the next connect, when not connected
        self.seen: dict[bytes, int] = {}  # every id read -> its place in the dashboard's bounded memory
        self.inserted = 0
        self.wire_dups = 0
        self.app_dups = 0
        self.resets = 0
        self.connects = 0
        self.back_at: float | None = None  # wall time (s) of its first message after it resumed
        self.resumed_back = False
        self.awaiting = False  # connected again after the restart mark; back once a cursor follows


def take(stream: Stream, data: bytes, restart_marked: bool) -> None:
    """Read the complete messages in ``data``: ids (deduped as dedupe.js does), cursor, retry, resets,
    and, after the restart mark, whether the stream is back (its first message after `connected`)."""
    buf = stream.tail + data if stream.tail else data
    cut = buf.rfind(b"\n\n")
    if cut < 0:
        stream.tail = buf
        return
    done, stream.tail = buf[:cut + 2], buf[cut + 2:]
    for ident in EVENT_ID.findall(done):
        place = stream.seen.get(ident)
        if place is not None:
            stream.wire_dups += 1
            if stream.inserted - place <= SEEN_CAPACITY:
                continue  # dedupe.js drops it
            stream.app_dups += 1  # forgotten by then: the application gets it twice
        stream.seen[ident] = stream.inserted
        stream.inserted += 1
    cursors = CURSOR.findall(done)
    if cursors:
        stream.cursor = cursors[-1].decode()
    retries = RETRY.findall(done)
    if retries:
        stream.retry_ms = int(retries[-1])
    if b"event: reset" in done:
        stream.resets += done.count(b"event: reset")
    after = 0
    if restart_marked and stream.back_at is None and b"event: connected" in done:
        after = done.index(b"\n\n", done.index(b"event: connected"))  # its cursor, if any, is not a resume
        stream.awaiting = True
        stream.resumed_back = b'"resumed": true' in done or b'"resumed":true' in done
    if stream.awaiting and CURSOR.search(done, after):
        stream.back_at, stream.awaiting = time.time(), False  # its first message after the resume


def lost_and_duplicates(streams: list[Stream], published: list[tuple[str, str]]) -> dict[str, Any]:
    """Lost events and duplicates against the publisher's (id, channel) list."""
    by_channel: dict[str, list[bytes]] = {}
    for ident, channel in published:
        by_channel.setdefault(channel, []).append(ident.encode())
    lost, streams_with_loss, worst = 0, 0, 0
    for stream in streams:
        missing = sum(1 for channel in stream.channels.split(",") for ident in by_channel.get(channel, ())
                      if ident not in stream.seen)
        lost += missing
        streams_with_loss += 1 if missing else 0
        worst = max(worst, missing)
    return {"lost": lost, "streams_with_loss": streams_with_loss, "worst_lost": worst,
            "wire_duplicates": sum(s.wire_dups for s in streams),
            "app_duplicates": sum(s.app_dups for s in streams)}

# --- connecting ---
