"""The per-process hub: ONE Redis reader for all clients, one encoding per message.

    history stream --XREAD--> HistoryReader --> Debouncer (per-type windows) --> FanOut
        --> FrameCache (encoded once per set of types) --> StreamClient.send, for each client

The hub owns the parts and their greenlets: the reader (gateway/reader.py), the flusher and
the heartbeat (gateway/fan_out.py) and the reporter (gateway/process_report.py). It keeps the
registry of open streams; the request greenlet of each stream (gateway/stream_session.py)
only waits for its peer to hang up, the hub writes to its socket.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Any

import gevent
import gevent.event
import redis

from gateway.admission import ResumeTurns
from gateway.clients import StreamClient
from gateway.close_reasons import CloseReason
from gateway.debounce import Debouncer
from gateway.fan_out import FanOut
from gateway.loops import spawn_supervised
from gateway.older_history import OlderHistory
from gateway.process_report import ProcessReporter, process_snapshot
from gateway.reader import HistoryReader
from gateway.recent import RecentHistory
from gateway.registry import StreamRegistry
from gateway.resume import JoinPoint, ResumePlanner
from gateway.tallies import StreamTallies
from shared.config import Settings
from shared.constants import CHANNEL_TYPES

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, settings: Settings, commands: redis.Redis) -> None:
        self.settings = settings
        self.redis = commands
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.registry = StreamRegistry()
        self.tallies = StreamTallies()
        self.debouncer = Debouncer(settings.debounce_window_ms, settings.batch_max_events, settings.debounce_windows)
        # Never more than the history in Redis keeps: memory answers resumes faster, not further back.
        self.recent = RecentHistory(min(settings.recent_max_events, settings.history_max_events),
                                    min(settings.recent_max_age_s, settings.history_max_age_s) * 1000)
        self.older = OlderHistory(settings, settings.history_connections)
        self.resume_turns = ResumeTurns(settings.resumes_at_once)
        wake = gevent.event.Event()
        self.reader = HistoryReader(settings, commands, self.debouncer, self.recent, wake)
        self.fan_out = FanOut(settings, self.registry, self.debouncer, self.tallies, lambda: self.reader.epoch, wake)
        self.resume_planner = ResumePlanner(settings, self.reader, self.debouncer, self.recent, self.older,
                                            self.tallies)
        self.reporter = ProcessReporter(settings, commands, self.process_id)
        self._greenlets: list[gevent.Greenlet] = []
        self.stopped = False  # for good: the worker is shutting down

    # --- lifecycle ---
    def start(self) -> None:
        """Spawn the reader, flusher and heartbeat loops (see gateway/services.py for when).

        ``report`` runs in the process's upkeep loop (gateway/services.py), with its other periodic jobs.
        """
        if self._greenlets or self.stopped:
            return
        self._greenlets = spawn_supervised([self.reader.read_forever, self.fan_out.flush_forever,
                                            self.fan_out.heartbeat_forever])

    @property
    def running(self) -> bool:
        return bool(self._greenlets)

    @property
    def loops_alive(self) -> bool:
        """The reader, flusher and heartbeat loops are all running."""
        return bool(self._greenlets) and not any(g.dead for g in self._greenlets)

    def stop(self) -> None:
        self.stopped = True
        for client in self.registry:
            client.close(CloseReason.SERVER_STOPPING)
        gevent.killall(self._greenlets, block=True, timeout=2)
        self._greenlets.clear()
        self.older.close()
        try:
            self.report()  # the streams just closed count as shutdown drops
            self.reporter.withdraw()
        except redis.RedisError:
            pass

    # --- streams ---
    def connect(self, types: frozenset[str], sock: socket.socket, *, chunked: bool,
                remote: str) -> tuple[StreamClient, JoinPoint]:
        """Register a stream; live messages wait in it until ``release()``; the join point says what came before."""
        client = StreamClient(
            uuid.uuid4().hex[:12], types, sock, chunked=chunked,
            buffer_limit=self.settings.client_buffer_bytes,
            send_timeout_s=self.settings.send_timeout_ms / 1000, on_close=self._forget, remote=remote,
        )
        # Nothing yields between these two lines: whatever leaves later reaches the client live.
        join = self.resume_planner.join_point(types)
        self.registry.add(client)
        return client, join

    def _forget(self, client: StreamClient, reason: CloseReason) -> None:
        self.registry.remove(client)
        self.tallies.count_close(reason)

    # --- what /status and /stats show ---
    @property
    def epoch(self) -> str:
        return self.reader.epoch

    def snapshot(self, with_connections: bool = False) -> dict[str, Any]:
        return process_snapshot(self, with_connections)

    def report(self) -> None:
        """Publish this process's snapshot (with a TTL) and add its new deliveries to today's stats."""
        self.reporter.report(self.snapshot(with_connections=True))


def types_for_channels(channels: list[str]) -> frozenset[str]:
    return frozenset(CHANNEL_TYPES[c] for c in channels)
