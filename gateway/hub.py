"""The per-process hub: ONE Redis reader for all clients, one encoding per message.

    history stream --XREAD--> reader --> Debouncer (per-type windows) --> flusher
        --> Frames (encoded once per set of types) --> StreamClient.send, for each client

Greenlets: the reader, the flusher, the heartbeat and the reporter (process snapshot and
per-day counters to Redis). The request greenlet of each stream only waits for its peer
to hang up; the hub writes to its socket.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import gevent
import gevent.event
import gevent.lock
import redis

from gateway import failover, history, messages, sse, stream_ids
from gateway.admission import ResumeTurns
from gateway.clients import StreamClient
from gateway.debounce import Batch, Debouncer, cursor_with, not_held
from gateway.epoch_check import SharedEpochCheck
from gateway.metrics import LatencyHistogram, empty_type_counters
from gateway.older_history import OlderHistory
from gateway.recent import Entry, RecentHistory
from gateway.stream_ids import StreamId
from gateway.totals import DropReason, TotalsReporter, drop_reason, flat_counters
from shared.config import Settings
from shared.constants import CHANNEL_TYPES, HISTORY_STREAM, PROCESS_PREFIX, TYPE_CHANNELS, short_name
from shared.event_bus import ensure_epoch, stats_day_key
from shared.realtime import with_bus_id
from shared.redis_client import redis_for, warn_unless_noeviction
from shared.timestamps import utc_iso

log = logging.getLogger(__name__)

EVENT_TYPES = tuple(TYPE_CHANNELS)
# One history entry as the reader gets it (bytes: the reader does not decode replies).
RawEntry = tuple[bytes, dict[bytes, bytes]]
READ_COUNT = 1000
READ_BLOCK_MS = 1000
CONNECTION_LIST_LIMIT = 200


def _now_ms() -> float:
    return time.monotonic() * 1000


@dataclass
class ResumePlan:
    resumed: bool  # the client asked to resume and can be
    reset: bool  # it asked, but its id is unknown or older than the history
    after: StreamId | None = None
    entries: list[Entry] | None = None  # what to replay, when memory had it (else read from Redis)
    reason: str = ""  # why a reset, when it is not the usual one


class Hub:
    def __init__(self, settings: Settings, commands: redis.Redis) -> None:
        self.settings = settings
        self.redis = commands
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.debouncer = Debouncer(settings.debounce_window_ms, settings.batch_max_events, settings.debounce_windows)
        self.clients: dict[str, StreamClient] = {}
        self.by_type: dict[str, set[StreamClient]] = {t: set() for t in EVENT_TYPES}
        self.total_connections = 0
        self.peak_connections = 0
        self.counters = empty_type_counters(EVENT_TYPES)
        self.latency = LatencyHistogram()
        self.resumes = 0
        self.replayed_events = 0
        self.resets = 0
        self.slow_dropped = 0
        self.drops: dict[str, int] = dict.fromkeys(DropReason, 0)
        self.latency_sum_ms = 0.0
        self._totals = TotalsReporter()
        # Never more than the history in Redis keeps: memory answers resumes faster, not further back.
        self.recent = RecentHistory(min(settings.recent_max_events, settings.history_max_events),
                                    min(settings.recent_max_age_s, settings.history_max_age_s) * 1000)
        self.older = OlderHistory(settings, settings.history_connections)
        self.epoch_check = SharedEpochCheck(self.older.read_epoch)
        self.resume_turns = ResumeTurns(settings.resumes_at_once)
        self.resumes_from_memory = 0
        self.redis_ok = False
        self.redis_error = "not connected yet"
        self.redis_policy: str | None = None  # maxmemory-policy; anything but noeviction is warned about
        self.history_losses = 0  # times Redis came back without events we had read
        self.on_report: list[Callable[[], None]] = []
        self._position_known = False
        self.epoch = ""  # of the history being read; in every id we hand out
        self._position_lock = gevent.lock.Semaphore()
        self._reported = empty_type_counters(EVENT_TYPES)
        self._wake = gevent.event.Event()
        self._greenlets: list[gevent.Greenlet] = []
        self.stopped = False  # for good: the worker is shutting down

    # --- lifecycle ---
    def start(self) -> None:
        if self._greenlets or self.stopped:
            return
        for loop in (self._read_forever, self._flush_forever, self._beat_forever, self._report_forever):
            self._greenlets.append(gevent.spawn(self._supervise, loop))

    @staticmethod
    def _supervise(loop: Callable[[], None]) -> None:
        """Run ``loop`` for ever: a bug in one message must not silently stop the stream."""
        while True:
            try:
                loop()
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("%s failed; restarting it in 1 s", loop.__name__)
                gevent.sleep(1)

    @property
    def running(self) -> bool:
        return bool(self._greenlets)

    @property
    def loops_alive(self) -> bool:
        """The reader, flusher, heartbeat and reporter loops are all running."""
        return bool(self._greenlets) and not any(g.dead for g in self._greenlets)

    def stop(self) -> None:
        self.stopped = True
        for client in list(self.clients.values()):
            client.close("server stopping")
        gevent.killall(self._greenlets, block=True, timeout=2)
        self._greenlets.clear()
        self.older.close()
        try:
            self.report()  # the streams just closed count as shutdown drops
            self.redis.delete(PROCESS_PREFIX + self.process_id)
        except redis.RedisError:
            pass

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

    # --- clients ---
    def connect(self, types: frozenset[str], sock: socket.socket, *, chunked: bool, remote: str) -> StreamClient:
        """Register a stream; live messages are held for it until ``release()``."""
        client = StreamClient(
            uuid.uuid4().hex[:12], types, sock, chunked=chunked,
            buffer_limit=self.settings.client_buffer_bytes,
            send_timeout_s=self.settings.send_timeout_ms / 1000, on_close=self._forget, remote=remote,
        )
        # What has left before this client came: a resume replays it (the held events come live).
        client.resume_until = self.debouncer.read_up_to
        client.resume_held = {t: sid for t, sid in self.debouncer.pending_firsts().items() if t in types}
        self.clients[client.id] = client
        for event_type in types:
            self.by_type[event_type].add(client)
        self.total_connections += 1
        self.peak_connections = max(self.peak_connections, len(self.clients))
        return client

    def _forget(self, client: StreamClient, reason: str) -> None:
        self.clients.pop(client.id, None)
        for event_type in client.types:
            self.by_type[event_type].discard(client)
        dropped = drop_reason(reason)
        if dropped is not None:
            self.drops[dropped] += 1
        if reason.startswith("slow"):
            self.slow_dropped += 1
            log.info("stream %s dropped: %s", client.id, reason)

    def plan_resume(self, last_event_id: str | None, client: StreamClient) -> ResumePlan:
        """Can ``client`` (just connected) resume from ``last_event_id``, and with what?

        A cursor of the current epoch inside the recent history is answered from memory (the
        entries are taken now, before anything can trim them); an older one is checked in
        Redis, queued behind the other Redis resumes.
        """
        if last_event_id is None or last_event_id == "":
            return ResumePlan(resumed=False, reset=False)
        entries = None
        length = 0
        try:
            epoch, after = stream_ids.parse_cursor(last_event_id)
            if self._memory_serves(epoch, after):
                entries = self.recent.since(after, client.resume_until, client.types)
                resumable = True
            else:
                info = history.read_info(self.redis)
                length = info.length
                # a failover that lost events this process read: not before its reader noticed
                resumable = (self.older.resumable(epoch, after)
                             and not failover.lost_entries(self.redis, self.debouncer.read_up_to, info))
        except ValueError:
            resumable = False
        except redis.RedisError as exc:
            log.warning("cannot check resume point (Redis: %s): sending reset", exc)
            resumable = False
        if not resumable:
            self.resets += 1
            return ResumePlan(resumed=False, reset=True)
        limit = self.settings.replay_max_events
        try:
            # Counting reads at most limit+1 entries, and only as many as follow the cursor.
            if entries is not None:
                too_far = len(entries) > limit  # from memory: counted without Redis
            else:
                too_far = length > limit and history.more_than_after(self.redis, after, limit)
        except redis.RedisError as exc:
            log.warning("cannot count the events to replay (Redis: %s): sending reset", exc)
            too_far = True
        if too_far:
            self.resets += 1
            return ResumePlan(resumed=False, reset=True,
                              reason=f"more than {limit} events behind (REALTIME_REPLAY_MAX_EVENTS)")
        self.resumes += 1
        if entries is not None:
            self.resumes_from_memory += 1
        return ResumePlan(resumed=True, reset=False, after=after, entries=entries)

    def _memory_serves(self, epoch: str, after: StreamId) -> bool:
        """Cursor in the recent history, of the epoch Redis has now (one read shared by a crowd)."""
        if epoch != self.epoch or not self.recent.covers(after):
            return False
        current = self.epoch_check.current()  # waits: it may not trust a read that predates it
        return current == self.epoch and self.recent.covers(after)  # the span may have moved meanwhile

    def replay(self, client: StreamClient, plan: ResumePlan) -> Iterator[bytes]:
        """The messages a resuming client missed, in stream order, each with its cursor id."""
        assert plan.after is not None
        after = plan.after
        held = client.resume_held
        # A replayed message's id may not pass an event that is still held back for this client.
        cap = cursor_with(held, client.resume_until, client.types)
        run_type: str | None = None
        run: list[str] = []
        run_last = after
        if plan.entries is not None:
            entries = plan.entries
        else:
            entries = self.older.entries(after, client.resume_until, client.types)
        for sid, event_type, body in not_held(entries, held):  # the held ones come live
            if run and (event_type != run_type or len(run) >= self.settings.batch_max_events):
                yield self._replay_message(run_type, run, min(run_last, cap), client.chunked)
                run = []
            run_type, run_last = event_type, sid
            run.append(body)
        if run:
            yield self._replay_message(run_type, run, min(run_last, cap), client.chunked)

    def _replay_message(self, event_type: str | None, run: list[str], cursor: StreamId, chunked: bool) -> bytes:
        assert event_type is not None
        self.replayed_events += len(run)
        raw = messages.event_message(event_type, messages.batch_data(event_type, run, len(run)), cursor, self.epoch)
        return sse.chunk(raw) if chunked else raw

    def reset_cursor(self, client: StreamClient) -> StreamId:
        return cursor_with(client.resume_held, client.resume_until, client.types)

    # --- the loops ---
    def _read_forever(self) -> None:
        reader = redis_for(self.settings, max_connections=1, socket_timeout=READ_BLOCK_MS / 1000 + 5,
                           client_name="rakuda-gateway-reader")
        backoff, reconnected = 0.1, False
        try:
            while True:
                try:
                    self.ensure_position(reader)
                    if self.redis_policy is None or reconnected:
                        self.redis_policy = warn_unless_noeviction(reader, "gateway") or "unknown"
                    if reconnected:
                        # A Redis that lost its data has a new epoch: the ids we hand out say so.
                        previous = self.epoch
                        self.epoch = ensure_epoch(reader)
                        self._check_history(reader)  # a failover that lost what we read: a new epoch
                        if self.epoch != previous:
                            self.recent.restart_at(self.debouncer.read_up_to)
                        log.info("Redis reachable again; reading the history from %s (epoch %s)",
                                 stream_ids.format(self.debouncer.read_up_to), self.epoch)
                    self.redis_ok, self.redis_error = True, ""  # reachable; the XREAD below may block a while
                    position = stream_ids.format(self.debouncer.read_up_to)
                    response = cast(list[tuple[bytes, list[RawEntry]]],
                                    reader.xread({HISTORY_STREAM: position}, count=READ_COUNT, block=READ_BLOCK_MS))
                    self.redis_ok, self.redis_error, backoff, reconnected = True, "", 0.1, False
                    if response:
                        self._take(response[0][1])
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

    def _take(self, entries: list[RawEntry]) -> None:
        now, wall_ms = _now_ms(), time.time() * 1000
        # The time an event took to reach us is taken off its window (a window runs from the
        # publish), but at most 100 ms: a gateway clock ahead of Redis's must not end windows early.
        max_credit = {t: min(float(self.debouncer.window_for(t)), 100.0) for t in self.by_type}
        taken: list[Entry] = []
        try:
            for raw_id, fields in entries:
                text_id = raw_id.decode()
                sid = stream_ids.parse(text_id)
                event_type, body = fields.get(b"t", b"").decode(), fields.get(b"e")
                if event_type not in self.by_type or body is None:
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

    def _flush_forever(self) -> None:
        while True:
            deadline = self.debouncer.next_deadline()
            if deadline is None:
                self._wake.wait()
            else:
                delay = (deadline - _now_ms()) / 1000
                if delay > 0:
                    self._wake.wait(delay)
            self._wake.clear()
            self.fan_out(self.debouncer.flush_due(_now_ms()))

    def fan_out(self, batches: list[Batch]) -> None:
        """Write the due batches: each encoded once per set of types, ONE write per client."""
        batches = [b for b in batches if self.by_type[b.type]]
        if not batches:
            return
        data = [messages.batch_data(b.type, [body for _sid, body in b.events], b.count) for b in batches]
        if len(batches) == 1:
            targets = list(self.by_type[batches[0].type])
        else:
            targets = list(set().union(*(self.by_type[b.type] for b in batches)))
        plans: dict[tuple[frozenset[str], bool], tuple[bytes, list[int]]] = {}
        sent = [0] * len(batches)
        now = time.time()
        for client in targets:
            key = (client.types, client.chunked)
            plan = plans.get(key)
            if plan is None:
                mine = [i for i, b in enumerate(batches) if b.type in client.types]
                raw = b"".join(
                    messages.event_message(batches[i].type, data[i], batches[i].cursor_for(client.types), self.epoch)
                    for i in mine
                )
                plan = plans[key] = (sse.chunk(raw) if client.chunked else raw, mine)
            frame, mine = plan
            if client.send(frame):
                client.messages_sent += len(mine)
                client.last_event_at = now
                for i in mine:
                    sent[i] += 1
            elif client.close_reason.startswith("slow"):
                for i in mine:
                    self.counters[batches[i].type]["dropped"] += batches[i].count
        written_ms = time.time() * 1000
        for batch, clients in zip(batches, sent, strict=True):
            self._count(batch, clients, written_ms)

    def _count(self, batch: Batch, clients: int, written_ms: float) -> None:
        counters = self.counters[batch.type]
        carried = len(batch.events)
        counters["messages"] += clients
        counters["delivered"] += carried * clients
        counters["coalesced"] += (carried - 1) * clients
        counters["truncated"] += (batch.count - carried) * clients
        if carried > 1:
            counters["batched"] += clients
        if clients:
            for sid, _body in batch.events:
                latency_ms = max(0.0, written_ms - sid[0])
                self.latency.record(latency_ms, clients)
                self.latency_sum_ms += latency_ms * clients

    def _beat_forever(self) -> None:
        interval = self.settings.heartbeat_interval_ms / 1000
        next_beat = time.monotonic() + interval
        while True:
            gevent.sleep(max(0.0, next_beat - time.monotonic()))
            next_beat += interval
            if next_beat < time.monotonic():  # fell behind (a stall): do not burst to catch up
                next_beat = time.monotonic() + interval
            self.beat()

    def beat(self) -> None:
        body = {"time": utc_iso(precision="seconds")}
        epoch = self.epoch
        frames = messages.Frames(
            lambda types: messages.json_message("heartbeat", body, cursor=self.debouncer.cursor(types), epoch=epoch)
        )
        for client in list(self.clients.values()):
            client.send(frames.for_client(client.types, client.chunked))

    def _report_forever(self) -> None:
        while True:
            try:
                self.report()
            except redis.RedisError as exc:
                log.debug("process report skipped: %s", exc)
            for callback in self.on_report:
                try:
                    callback()
                except redis.RedisError as exc:
                    log.debug("report callback skipped: %s", exc)
            gevent.sleep(self.settings.report_interval_s)

    def report(self) -> None:
        """Publish this process's snapshot (with a TTL) and add its new deliveries to today's stats."""
        ttl_ms = int(max(3 * self.settings.report_interval_s, 2.0) * 1000)
        pipe = self.redis.pipeline(transaction=False)
        snapshot = self.snapshot(with_connections=True)
        pipe.set(PROCESS_PREFIX + self.process_id, json.dumps(snapshot), px=ttl_ms)
        totals = flat_counters(snapshot)
        self._totals.add_to(pipe, totals)
        day_key = stats_day_key()
        current = copy.deepcopy(self.counters)
        for event_type, counters in current.items():
            for name, value in counters.items():
                delta = value - self._reported[event_type][name]
                if delta:
                    pipe.hincrby(day_key, f"{name}:{event_type}", delta)
        pipe.expire(day_key, self.settings.stats_retention_days * 86400)
        pipe.execute()
        self._reported = current
        self._totals.reported(totals)

    # --- what /status and /stats show ---
    def snapshot(self, with_connections: bool = False) -> dict[str, Any]:
        snap = {
            "processId": self.process_id,
            "pid": os.getpid(),
            "startedAt": self.started_at,
            "uptime": round(time.time() - self.started_at, 3),
            "redisReachable": self.redis_ok,
            "connections": {
                "active": len(self.clients),
                "total": self.total_connections,
                "peak": self.peak_connections,
            },
            "types": copy.deepcopy(self.counters),
            "latencyBuckets": list(self.latency.counts),
            "resumes": self.resumes,
            "replayedEvents": self.replayed_events,
            "resets": self.resets,
            "resumesFromMemory": self.resumes_from_memory,
            "recentHistory": {"events": len(self.recent), "from": stream_ids.format(self.recent.floor)},
            "resumesQueued": self.older.waiting + self.resume_turns.waiting,
            "slowClientsDropped": self.slow_dropped,
            "drops": {str(reason): n for reason, n in self.drops.items()},
            "latencySumMs": round(self.latency_sum_ms, 3),
        }
        if with_connections:
            newest = sorted(self.clients.values(), key=lambda c: c.connected_at, reverse=True)
            snap["connectionList"] = [self.describe(c) for c in newest[:CONNECTION_LIST_LIMIT]]
        return snap

    @staticmethod
    def describe(client: StreamClient) -> dict[str, Any]:
        info = client.describe()
        info["channels"] = sorted(short_name(TYPE_CHANNELS[t]) for t in client.types)
        return info


def types_for_channels(channels: list[str]) -> frozenset[str]:
    return frozenset(CHANNEL_TYPES[c] for c in channels)
