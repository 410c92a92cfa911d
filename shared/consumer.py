"""Durable subscribers: consumer groups on the history stream, so that no event is missed.

A :class:`Consumer` reads ``rakuda:realtime:history`` with ``XREADGROUP`` under a group name.
An entry is acknowledged only after its handler returned; a handler that raises leaves it
pending, and it is delivered again (to this consumer or any other of the group) once it has
been idle for ``CONSUMER_CLAIM_AFTER`` seconds (``XAUTOCLAIM``). After
``CONSUMER_MAX_DELIVERIES`` deliveries it moves to the list ``rakuda:realtime:dead:<group>``.
An entry trimmed from the capped history before it was acknowledged is logged and counted
as lost in ``rakuda:realtime:consumer:<group>`` (field ``lost``): never a silent gap.

Several consumers of one group share its entries; each group sees every event.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis

from shared.config import Settings
from shared.constants import HISTORY_STREAM
from shared.consumer_groups import CONSUMER_STATS_PREFIX, GROUPS_KEY, dead_key, group_status
from shared.realtime import RealTimeEvent
from shared.redis_replies import stream_entries, text

log = logging.getLogger(__name__)

__all__ = ["Consumer", "Entry", "dead_key", "group_status"]


Handler = Callable[[RealTimeEvent], Any]


@dataclass(frozen=True)
class Entry:
    """One history entry as delivered to a group: its stream id, type and event (None if trimmed)."""

    stream_id: str
    event_type: str | None
    event: RealTimeEvent | None
    deliveries: int = 1


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Consumer:
    """One member of consumer group ``group``; ``run()`` blocks, ``stop()`` ends it.

    ``types``: event types this consumer handles (others are acknowledged unseen).
    ``start``: where a new group begins: ``"$"`` (only new events) or ``"0"`` (the whole history).
    ``name``: the member name; a restarted process with the same name first takes back its own
    pending entries.
    """

    def __init__(self, client: redis.Redis, settings: Settings, group: str, handler: Handler | None = None, *,
                 types: Iterable[str] | None = None, start: str = "$", name: str | None = None) -> None:
        if not group or any(c.isspace() for c in group):
            raise ValueError(f"a consumer group name must be non-empty without spaces, got {group!r}")
        self.redis = client
        self.settings = settings
        self.group = group
        self.handler = handler
        self.types = frozenset(types) if types is not None else None
        self.start = start
        self.name = name or default_consumer_name()
        self._stop = threading.Event()
        self._own_pending_done = False
        self._own_cursor = "0"  # how far this member's own pending entries were taken back
        self.ensure_group()

    # --- the group ---
    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(HISTORY_STREAM, self.group, id=self.start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.redis.sadd(GROUPS_KEY, self.group)

    # --- reading ---
    def poll(self, count: int = 100, block_ms: int = 1000) -> list[Entry]:
        """Entries to handle now: own pending first (after a restart), then stale ones of dead
        members, then new ones (waiting up to ``block_ms``). Filtered-out types are acknowledged."""
        entries: list[Entry] = []
        if not self._own_pending_done:
            entries = self._read(self._own_cursor, count, None)
            if entries:
                self._own_cursor = entries[-1].stream_id
            if len(entries) < count:
                self._own_pending_done = True
        if not entries:
            entries = self._claim(count)
        if not entries:
            entries = self._read(">", count, block_ms)
        return self._filter(entries)

    def _read(self, from_id: str, count: int, block_ms: int | None) -> list[Entry]:
        reply = self.redis.xreadgroup(self.group, self.name, {HISTORY_STREAM: from_id}, count=count,
                                      block=block_ms)
        out: list[Entry] = []
        for _stream, items in cast(list[Any], reply or []):
            for stream_id, fields in stream_entries(items):
                out.append(self._entry(stream_id, fields))
        if from_id != ">" and out:
            counts = self._delivery_counts([e.stream_id for e in out])
            out = [Entry(e.stream_id, e.event_type, e.event, counts.get(e.stream_id, 1)) for e in out]
        return out

    def _claim(self, count: int) -> list[Entry]:
        idle_ms = int(self.settings.consumer_claim_after_s * 1000)
        reply = self.redis.xautoclaim(HISTORY_STREAM, self.group, self.name, min_idle_time=idle_ms,
                                      start_id="0-0", count=count)
        parts = reply
        items = stream_entries(parts[1]) if len(parts) > 1 else []
        deleted = [text(i) for i in parts[2]] if len(parts) > 2 else []
        if deleted:
            self._lost(deleted)
        out = [self._entry(sid, fields) for sid, fields in items]
        counts = self._delivery_counts([e.stream_id for e in out])
        return [Entry(e.stream_id, e.event_type, e.event, counts.get(e.stream_id, 1)) for e in out]

    def _delivery_counts(self, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = self.redis.xpending_range(HISTORY_STREAM, self.group, min=min(ids, key=_id_key),
                                         max=max(ids, key=_id_key), count=len(ids) * 2 + 10, consumername=self.name)
        return {text(r["message_id"]): int(r["times_delivered"]) for r in cast(list[dict[str, Any]], rows)}

    def _entry(self, stream_id: str, decoded: dict[str, str]) -> Entry:
        if not decoded:
            return Entry(stream_id, None, None)
        try:
            event = RealTimeEvent.parse(decoded["e"]).model_copy(update={"id": stream_id})
        except (KeyError, ValueError):
            log.exception("consumer group %s: undecodable history entry %s", self.group, stream_id)
            return Entry(stream_id, decoded.get("t"), None)
        return Entry(stream_id, decoded.get("t"), event)

    def _filter(self, entries: list[Entry]) -> list[Entry]:
        keep: list[Entry] = []
        skip: list[str] = []
        lost: list[str] = []
        for entry in entries:
            if entry.event_type is None:
                lost.append(entry.stream_id)
            elif entry.event is None:
                self.dead_letter(entry, "undecodable entry")
            elif self.types is not None and entry.event_type not in self.types:
                skip.append(entry.stream_id)
            else:
                keep.append(entry)
        if lost:
            self._lost(lost)
        if skip:
            self.ack(skip)
        return keep

    # --- outcomes ---
    def ack(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            pipe = self.redis.pipeline()
            pipe.xack(HISTORY_STREAM, self.group, *ids)
            pipe.hincrby(CONSUMER_STATS_PREFIX + self.group, "acked", len(ids))
            pipe.execute()

    def _lost(self, ids: list[str]) -> None:
        log.error("consumer group %s: %d pending entr%s trimmed from the history before acknowledgement, "
                  "lost: %s", self.group, len(ids), "y was" if len(ids) == 1 else "ies were", ", ".join(ids[:20]))
        pipe = self.redis.pipeline()
        pipe.xack(HISTORY_STREAM, self.group, *ids)
        pipe.hincrby(CONSUMER_STATS_PREFIX + self.group, "lost", len(ids))
        pipe.execute()

    def dead_letter(self, entry: Entry, error: str) -> None:
        record = {"streamId": entry.stream_id, "type": entry.event_type, "deliveries": entry.deliveries,
                  "error": error, "at": time.time(),
                  "event": entry.event.model_dump(mode="json", exclude_none=True) if entry.event else None}
        log.error("consumer group %s: entry %s dead-lettered after %d deliveries: %s",
                  self.group, entry.stream_id, entry.deliveries, error)
        pipe = self.redis.pipeline()
        pipe.rpush(dead_key(self.group), json.dumps(record))
        pipe.xack(HISTORY_STREAM, self.group, entry.stream_id)
        pipe.hincrby(CONSUMER_STATS_PREFIX + self.group, "dead", 1)
        pipe.execute()

    def handle(self, entries: list[Entry]) -> None:
        """Call the handler for each entry; acknowledge those it returned for (in one round trip
        after the batch: a crash within it hands them out again, never loses one)."""
        assert self.handler is not None
        done: list[str] = []
        try:
            for entry in entries:
                if self._handle_one(entry):
                    done.append(entry.stream_id)
        finally:
            self.ack(done)

    def _handle_one(self, entry: Entry) -> bool:
        """True when the handler returned; a failure stays pending, or is dead-lettered at the limit."""
        assert self.handler is not None and entry.event is not None
        try:
            self.handler(entry.event)
        except Exception as exc:
            if entry.deliveries >= self.settings.consumer_max_deliveries:
                self.dead_letter(entry, f"{type(exc).__name__}: {exc}")
            else:
                log.exception("consumer group %s: handler failed on %s (delivery %d of %d)", self.group,
                              entry.stream_id, entry.deliveries, self.settings.consumer_max_deliveries)
            return False
        return True

    # --- running ---
    def run(self, block_ms: int = 1000) -> None:
        """Handle entries until ``stop()``; Redis errors are logged and retried."""
        while not self._stop.is_set():
            try:
                self.handle(self.poll(block_ms=block_ms))
            except redis.RedisError as exc:
                log.warning("consumer group %s: Redis error, retrying: %s", self.group, exc)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
