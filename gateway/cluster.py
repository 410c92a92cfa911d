"""Adding up the gateway processes: each reports a snapshot to Redis with a TTL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from gateway.metrics import LatencyHistogram, add_counters
from shared.constants import PROCESS_PREFIX, STATS_DAY_PREFIX
from shared.timestamps import utc_day

SUM_FIELDS = ("resumes", "replayedEvents", "resets", "slowClientsDropped")


def live_snapshots(client: redis.Redis, own: dict[str, Any]) -> list[dict[str, Any]]:
    """This process's fresh snapshot plus the last report of every other live process."""
    found = [own]
    keys = [k for k in client.scan_iter(match=PROCESS_PREFIX + "*", count=500)]
    if keys:
        for raw in client.mget(keys):
            if raw is None:
                continue
            snap = json.loads(raw)
            if snap.get("processId") != own["processId"]:
                found.append(snap)
    return found


def add_up(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Cluster totals of counters, connections and latency."""
    types: dict[str, dict[str, int]] = {}
    latency = LatencyHistogram()
    totals: dict[str, Any] = dict.fromkeys(SUM_FIELDS, 0)
    connections = {"active": 0, "total": 0, "peak": 0}
    for snap in snapshots:
        add_counters(types, snap["types"])
        latency.merge(snap["latencyBuckets"])
        for name in SUM_FIELDS:
            totals[name] += snap.get(name, 0)
        for name in connections:
            connections[name] += snap["connections"][name]
    totals.update(types=types, connections=connections, latencyMs=latency.summary(), processes=len(snapshots))
    return totals


def day_history(client: redis.Redis, days: int, today: datetime | None = None) -> list[dict[str, Any]]:
    """Per-day counters (published by the bus, delivered & co by the gateways), newest first."""
    today = today or datetime.now(UTC)
    dates = [utc_day(today - timedelta(days=i)) for i in range(days)]
    pipe = client.pipeline(transaction=False)
    for date in dates:
        pipe.hgetall(STATS_DAY_PREFIX + date)
    out = []
    for date, raw in zip(dates, pipe.execute(), strict=True):
        per_type: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            name, _, event_type = (field.decode() if isinstance(field, bytes) else field).partition(":")
            per_type.setdefault(event_type, {})[name] = int(value)
        published = sum(t.get("published", 0) for t in per_type.values())
        delivered = sum(t.get("delivered", 0) for t in per_type.values())
        out.append({
            "date": date,
            "types": per_type,
            "published": published,
            "delivered": delivered,
            # deliveries per published event: with N dashboards open this is about N.
            "deliveryRate": round(delivered / published, 3) if published else None,
        })
    return out
