"""What one gateway process shows of itself: its snapshot (for /status, /stats, /connections) and
its reports to Redis (the snapshot with a TTL, its new deliveries in today's stats and the totals).
"""

from __future__ import annotations

import copy
import json
import os
import time
from typing import TYPE_CHECKING, Any

import redis

from gateway import stream_ids
from gateway.clients import StreamClient
from gateway.tallies import EVENT_TYPES
from gateway.totals import TotalsReporter, flat_counters
from shared.config import Settings
from shared.constants import PROCESS_PREFIX, TYPE_CHANNELS, short_name
from shared.event_bus import stats_day_key

if TYPE_CHECKING:
    from gateway.hub import Hub

CONNECTION_LIST_LIMIT = 200


def process_snapshot(hub: Hub, with_connections: bool = False) -> dict[str, Any]:
    tallies, registry = hub.tallies, hub.registry
    snap = {
        "processId": hub.process_id,
        "pid": os.getpid(),
        "startedAt": hub.started_at,
        "uptime": round(time.time() - hub.started_at, 3),
        "redisReachable": hub.reader.redis_ok is True,
        "connections": {"active": len(registry), "total": registry.total, "peak": registry.peak},
        "types": copy.deepcopy(tallies.types),
        "latencyBuckets": list(tallies.latency.counts),
        "resumes": tallies.resumes,
        "replayedEvents": tallies.replayed_events,
        "resets": tallies.resets,
        "resumesFromMemory": tallies.resumes_from_memory,
        "recentHistory": {"events": len(hub.recent), "from": stream_ids.format(hub.recent.floor)},
        "resumesQueued": hub.older.waiting + hub.resume_turns.waiting,
        "slowClientsDropped": tallies.slow_dropped,
        "drops": {str(reason): n for reason, n in tallies.drops.items()},
        "latencySumMs": round(tallies.latency_sum_ms, 3),
    }
    if with_connections:
        newest = sorted(registry.by_id.values(), key=lambda c: c.connected_at, reverse=True)
        snap["connectionList"] = [describe(c) for c in newest[:CONNECTION_LIST_LIMIT]]
    return snap


def describe(client: StreamClient) -> dict[str, Any]:
    info = client.describe()
    info["channels"] = sorted(short_name(TYPE_CHANNELS[t]) for t in client.types)
    return info


class ProcessReporter:
    """Reports one process to Redis: each call adds only what was counted since the last one."""

    def __init__(self, settings: Settings, commands: redis.Redis, process_id: str) -> None:
        self.settings = settings
        self.redis = commands
        self.key = PROCESS_PREFIX + process_id
        self._totals = TotalsReporter()
        self._reported: dict[str, dict[str, int]] = {t: {} for t in EVENT_TYPES}

    def report(self, snapshot: dict[str, Any]) -> None:
        """Publish ``snapshot`` (with a TTL) and add its new deliveries to today's stats."""
        ttl_ms = int(max(3 * self.settings.report_interval_s, 2.0) * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.key, json.dumps(snapshot), px=ttl_ms)
        totals = flat_counters(snapshot)
        self._totals.add_to(pipe, totals)
        day_key = stats_day_key()
        current: dict[str, dict[str, int]] = snapshot["types"]
        for event_type, counters in current.items():
            for name, value in counters.items():
                delta = value - self._reported.get(event_type, {}).get(name, 0)
                if delta:
                    pipe.hincrby(day_key, f"{name}:{event_type}", delta)
        pipe.expire(day_key, self.settings.stats_retention_days * 86400)
        pipe.execute()
        self._reported = current
        self._totals.reported(totals)

    def withdraw(self) -> None:
        """The process is stopping: its snapshot goes at once, not when its TTL ends."""
        self.redis.delete(self.key)
