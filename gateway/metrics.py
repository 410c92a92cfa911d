"""Counters and a latency histogram that add up across processes (plain data, no I/O)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Upper edges of the latency buckets in ms; the last bucket is open-ended.
LATENCY_EDGES_MS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 400, 500, 600, 750,
                    1000, 1500, 2000, 3000, 5000, 10000, 30000)

TYPE_COUNTERS = ("delivered", "messages", "batched", "coalesced", "truncated", "dropped")


@dataclass
class LatencyHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_EDGES_MS) + 1))

    def record(self, latency_ms: float, weight: int = 1) -> None:
        self.counts[bisect.bisect_left(LATENCY_EDGES_MS, latency_ms)] += weight

    def merge(self, other: Iterable[int]) -> None:
        for i, n in enumerate(other):
            if i < len(self.counts):
                self.counts[i] += n

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile(self, p: float) -> float | None:
        """Upper edge of the bucket holding the p-th percentile (None when empty)."""
        total = self.total
        if not total:
            return None
        rank = p / 100 * total
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank and n:
                return float(LATENCY_EDGES_MS[i]) if i < len(LATENCY_EDGES_MS) else float("inf")
        return float("inf")

    def summary(self) -> dict[str, float | int | None]:
        return {"samples": self.total, "p50": self.percentile(50), "p95": self.percentile(95),
                "p99": self.percentile(99)}


def empty_type_counters(types: Iterable[str]) -> dict[str, dict[str, int]]:
    return {t: dict.fromkeys(TYPE_COUNTERS, 0) for t in types}


def add_counters(into: dict[str, dict[str, int]], other: Mapping[str, Mapping[str, int]]) -> None:
    for event_type, counters in other.items():
        target = into.setdefault(event_type, dict.fromkeys(TYPE_COUNTERS, 0))
        for name, value in counters.items():
            target[name] = target.get(name, 0) + int(value)
