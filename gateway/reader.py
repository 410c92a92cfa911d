"""The one reader of the history stream in a gateway process, and the epoch of what it reads.

One greenlet XREADs the history (one Redis connection for all clients), hands each event to
the debouncer and the recent history, and wakes the flusher. Across Redis outages it retries
with backoff; when Redis comes back it checks the epoch and whether a failover lost events it
had read (then the epoch changes, so resuming clients get a reset, not a gap).
"""

from __future__ import annotations

import logging
import random
import time
from typing import cast

import gevent
import gevent.event
import gevent.lock
import redis

from gateway import failover, history, stream_ids
from gateway.debounce import Debouncer
from gateway.recent import Entry, RecentHistory
from gateway.tallies import EVENT_TYPES
from shared.config import Settings
from shared.constants import HISTORY_STREAM
from shared.event_bus import ensure_epoch
from shared.realtime import with_bus_id
from shared.redis_client import redis_for, warn_unless_noeviction

log = logging.getLogger(__name__)

# One history entry as the reader gets it (bytes: the reader does not decode replies).
RawEntry = tuple[bytes, dict[bytes, bytes]]
READ_COUNT = 1000
READ_BLOCK_MS = 1000
MAX_CREDIT_MS = 100.0
KNOWN_TYPES = frozenset(EVENT_TYPES)


def now_ms() -> float:
    """The monotonic clock the debounce windows run on, in ms."""
    return time.monotonic() * 1000


class HistoryReader:
    def __init__(self, settings: Settings, commands: redis.Redis, debouncer: Debouncer, recent: RecentHistory,
                 wake: gevent.event.Event) -> None:
        self.settings = settings
        self.redis = commands
        self.debouncer = debouncer
        self.recent = recent
        self._wake = wake  # set after each read: the flusher looks at the new windows
        self.epoch = ""  # of the history being read; in every id the gateway hands out
        self.redis_ok: bool | None = None  # None: no read tried yet (the process has just started)
        self.redis_error = "not connected yet"
        self.redis_policy: str | None = None  # maxmemory-policy; anything but noeviction is warned about
        self.history_losses = 0  # times Redis came back without events we had read
        self._position_known = False
        self._position_lock = gevent.lock.Semaphore()

    def ensure_position(self, client: redis.Redis | None = None) -> None:
        """Fix where reading starts (the stream's end now) before the first client counts on it."""
        if self._position_known:
            return
        with self._position_lock:
            if not self._position_known:
                redis_client = client or self.redis
                self.epoch = ensure_epoch(redis_client)
                info = history.read_info(redis_client)
                tail = history.tail_entries(redis_client, info.last_generated, self.recent.max_events)
                complete = info.entries_added is not None and info.entries_added == info.length == len(tail)
                self.recent.load(tail, info.last_generated, complete, now_ms=time.time() * 1000)
                self.debouncer.start_at(info.last_generated)
                self._position_known = True

    def read_forever(self) -> None:
        reader = redis_for(self.settings, max_connections=1, socket_timeout=READ_BLOCK_MS / 1000 + 5,
                           client_name="rakuda-gateway-reader")
        backoff, reconnected = 0.1, False
        try:
            while True:
                try:
                    self._read_once(reader, reconnected)
                    backoff, reconnected = 0.1, False
                except redis.RedisError as exc:
                    if self.redis_ok:
                        log.warning("Redis unreachable (%s); retrying with backoff", exc)
                    self.redis_ok, self.redis_error = False, exc.__class__.__name__  # the text goes to the log only
                    reconnected = True
                    gevent.sleep(backoff * (0.5 + random.random()))
                    backoff = min(backoff * 2, 5.0)
        finally:
            reader.close()
            reader.connection_pool.disconnect()

    def _read_once(self, reader: redis.Redis, reconnected: bool) -> None:
        self.ensure_position(reader)
        if self.redis_policy is None or reconnected:
            self.redis_policy = warn_unless_noeviction(reader, "gateway") or "unknown"
        if reconnected:
            self._after_reconnect(reader)
        self.redis_ok, self.redis_error = True, ""  # reachable; the XREAD below may block a while
        position = stream_ids.format(self.debouncer.read_up_to)
        response = cast(list[tuple[bytes, list[RawEntry]]],
                        reader.xread({HISTORY_STREAM: position}, count=READ_COUNT, block=READ_BLOCK_MS))
        self.redis_ok, self.redis_error = True, ""
        if response:
            self.take(response[0][1])

    def _after_reconnect(self, reader: redis.Redis) -> None:
        """A Redis that lost its data has a new epoch: the ids we hand out say so."""
        previous = self.epoch
        self.epoch = ensure_epoch(reader)
        self._check_history(reader)  # a failover that lost what we read: a new epoch
        if self.epoch != previous:
            self.recent.restart_at(self.debouncer.read_up_to)
        log.info("Redis reachable again; reading the history from %s (epoch %s)",
                 stream_ids.format(self.debouncer.read_up_to), self.epoch)

    def _check_history(self, reader: redis.Redis) -> None:
        """After a reconnect: a history without the events we read (a failover lost them) gets a new epoch."""
        info = history.read_info(reader)
        read_up_to = self.debouncer.read_up_to
        if not failover.lost_entries(reader, read_up_to, info):
            return
        self.history_losses += 1
        self.epoch = failover.rotate_epoch(reader, self.epoch)
        log.warning("Redis came back without events up to %s that this gateway read (a failover lost them): "
                    "new epoch %s, so resuming clients get a reset, not a gap", stream_ids.format(read_up_to),
                    self.epoch)
        if info.last_generated < read_up_to:
            # Reading on from our old position would skip events the new primary numbers below it.
            self.debouncer.start_at(info.last_generated)

    def take(self, entries: list[RawEntry]) -> None:
        """Entries read from the history, in stream order, into the debounce windows and the recent history."""
        now, wall_ms = now_ms(), time.time() * 1000
        # The time an event took to reach us is taken off its window (a window runs from the
        # publish), but at most 100 ms: a gateway clock ahead of Redis's must not end windows early.
        max_credit = {t: min(float(self.debouncer.window_for(t)), MAX_CREDIT_MS) for t in KNOWN_TYPES}
        taken: list[Entry] = []
        try:
            for raw_id, fields in entries:
                text_id = raw_id.decode()
                sid = stream_ids.parse(text_id)
                event_type, body = fields.get(b"t", b"").decode(), fields.get(b"e")
                if event_type not in KNOWN_TYPES or body is None:
                    log.warning("skipping history entry %s: not an event (type %r)", text_id, event_type)
                    self.debouncer.skip(sid)
                    continue
                credit = min(max(0.0, wall_ms - sid[0]), max_credit[event_type])
                event_json = with_bus_id(body.decode(), text_id)
                self.debouncer.add(sid, event_type, event_json, now - credit)
                taken.append((sid, event_type, event_json))
        finally:
            self.recent.extend(taken, self.debouncer.read_up_to, wall_ms)
            self._wake.set()
