"""Cluster-wide, all-time counters: each gateway process adds what it counted since its last report.

Prometheus counters must only grow, and a scrape of any worker on any host must show the whole
cluster. Summing the live processes' snapshots does neither (a process that exits takes its
numbers with it), so every process adds its *increments* to one Redis hash
(``METRICS_TOTALS``) on each report; ``/metrics`` reads that hash. The bus adds
``published:<type>`` to the same hash in its publish script, the webhook receiver adds
``webhook:<provider>:<outcome>``, and Celery workers add ``task_*`` fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import redis

from shared.constants import METRICS_TOTALS


class DropReason(StrEnum):
    """Why the gateway ended a stream that the client had not closed."""

    SLOW = "slow"  # its buffer overflowed
    SEND_TIMEOUT = "send_timeout"  # its socket took nothing for SSE_SEND_TIMEOUT
    LIMIT = "limit"  # refused: the process holds its maximum of streams
    SHUTDOWN = "shutdown"  # the worker is stopping
    OTHER = "other"


def flat_counters(snapshot: Mapping[str, Any]) -> dict[str, int]:
    """The counters of a process snapshot as hash fields (see ``gateway.snapshots.process_snapshot``)."""
    out: dict[str, int] = {}
    for event_type, counters in snapshot["types"].items():
        out[f"delivered:{event_type}"] = int(counters["delivered"])
        out[f"messages:{event_type}"] = int(counters["messages"])
    for index, count in enumerate(snapshot["latencyBuckets"]):
        out[f"latency_bucket:{index}"] = int(count)
    out["latency_sum_us"] = int(snapshot.get("latencySumMs", 0) * 1000)
    for reason, count in snapshot.get("drops", {}).items():
        out[f"dropped:{reason}"] = int(count)
    out["resumes:replayed"] = int(snapshot["resumes"])
    out["resumes:reset"] = int(snapshot["resets"])
    return out


class TotalsReporter:
    """Turns successive snapshots of one process into increments of the cluster totals."""

    def __init__(self) -> None:
        self._reported: dict[str, int] = {}

    def increments(self, current: Mapping[str, int]) -> dict[str, int]:
        return {k: v - self._reported.get(k, 0) for k, v in current.items() if v != self._reported.get(k, 0)}

    def add_to(self, pipe: redis.client.Pipeline, current: Mapping[str, int]) -> None:
        """Queue the increments on ``pipe``; call ``reported`` once the pipeline ran."""
        for name, delta in self.increments(current).items():
            pipe.hincrby(METRICS_TOTALS, name, delta)

    def reported(self, current: Mapping[str, int]) -> None:
        self._reported = dict(current)


def read_totals(client: redis.Redis) -> dict[str, int]:
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in client.hgetall(METRICS_TOTALS).items()}


class PendingCounts:
    """Cluster-wide counters added in this process and sent in one round trip now and then.

    A counter per request (a webhook delivery's outcome) would cost that request a Redis round
    trip of its own: 14 % of a delivery's CPU at 750 deliveries/s. Counted here, everything an
    interval counted goes in one MULTI/EXEC; a Redis error keeps the counts for the next flush.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        self._counts[name] += amount

    def flush(self, client: redis.Redis) -> None:
        if not self._counts:
            return
        counts, self._counts = self._counts, Counter()
        try:
            pipe = client.pipeline(transaction=True)  # all or nothing: a retry never counts twice
            for name, amount in counts.items():
                pipe.hincrby(METRICS_TOTALS, name, amount)
            pipe.execute()
        except redis.RedisError:
            self._counts.update(counts)
            raise
