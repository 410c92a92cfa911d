"""What one gateway process counted since it started: deliveries per type, latency, resumes, drops.

Plain data: the fan-out, the resume planner and the registry add to it; the snapshot and the
reports to Redis read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.close_reasons import CloseReason
from gateway.debounce import Batch
from gateway.metrics import LatencyHistogram, empty_type_counters
from gateway.totals import DropReason
from shared.constants import TYPE_CHANNELS

EVENT_TYPES = tuple(TYPE_CHANNELS)


@dataclass
class StreamTallies:
    types: dict[str, dict[str, int]] = field(default_factory=lambda: empty_type_counters(EVENT_TYPES))
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    latency_sum_ms: float = 0.0
    resumes: int = 0
    resumes_from_memory: int = 0
    replayed_events: int = 0
    resets: int = 0
    slow_dropped: int = 0
    drops: dict[DropReason, int] = field(default_factory=lambda: dict.fromkeys(DropReason, 0))

    def count_batch(self, batch: Batch, clients: int, written_ms: float) -> None:
        """``batch`` reached ``clients`` streams (written at ``written_ms``, wall clock)."""
        counters = self.types[batch.type]
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

    def count_close(self, reason: CloseReason) -> None:
        dropped = reason.drop
        if dropped is not None:
            self.drops[dropped] += 1
        if reason.slow:
            self.slow_dropped += 1
