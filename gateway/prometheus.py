"""``GET /metrics``: the cluster's numbers in the Prometheus text format (``prometheus_client``).

Any gateway worker answers for the whole cluster: counters come from the all-time hash that every
process adds to (``gateway.totals``), gauges from the live processes' snapshots, the outbox
backlog from the database. A scrape therefore needs one target (or several behind a load
balancer, which all agree), and no multiprocess directory has to be shared between workers or
hosts. The cost is that counters lag by at most ``REALTIME_REPORT_INTERVAL``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import redis
from flask import Blueprint, Response, request
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from gateway import cluster
from gateway.auth import require_api_key
from gateway.hub import Hub
from gateway.metrics import LATENCY_EDGES_MS
from gateway.services import services
from gateway.tallies import EVENT_TYPES
from gateway.totals import DropReason, read_totals
from shared.constants import TASK_DURATION_EDGES_S
from shared.database import Database
from shared.models import OutboxUnsent
from shared.webhook_payloads import PROVIDERS

metrics_bp = Blueprint("metrics", __name__)

WEBHOOK_OUTCOMES = ("accepted", "duplicate", "rejected", "failed")
TASK_OUTCOMES = ("success", "failure", "retry")


class ClusterCollector(Collector):
    """Reads the cluster's numbers at scrape time; nothing is kept between scrapes."""

    def __init__(self, hub: Hub, count_unsent: Callable[[], int | None]) -> None:
        self.hub = hub
        self.count_unsent = count_unsent

    def collect(self) -> Iterator[Metric]:
        redis_up = GaugeMetricFamily("rakuda_redis_up", "1 when this gateway process can reach Redis.")
        try:
            totals = read_totals(self.hub.redis)
            snapshots = cluster.live_snapshots(self.hub.redis, self.hub.snapshot())
        except redis.RedisError:
            redis_up.add_metric([], 0)
            yield redis_up
            yield _connections([self.hub.snapshot()])
            return
        redis_up.add_metric([], 1)
        yield redis_up
        yield _connections(snapshots)
        yield from _event_counters(totals)
        yield _latency(totals)
        yield _labelled_counter("rakuda_sse_clients_dropped", "Streams ended by the gateway, by reason.",
                                "reason", [str(r) for r in DropReason], totals, "dropped")
        yield _labelled_counter("rakuda_sse_resumes", "Reconnects with a Last-Event-ID, by result.",
                                "result", ["replayed", "reset"], totals, "resumes")
        yield _webhooks(totals)
        yield from _tasks(totals)
        unsent = self.count_unsent()
        if unsent is not None:
            yield GaugeMetricFamily("rakuda_outbox_unsent", "Outbox events committed but not yet published.",
                                    value=unsent)


def _connections(snapshots: list[dict[str, Any]]) -> GaugeMetricFamily:
    return GaugeMetricFamily("rakuda_sse_connections", "Open event streams in the cluster.",
                             value=sum(s["connections"]["active"] for s in snapshots))


def _event_counters(totals: dict[str, int]) -> Iterator[Metric]:
    specs = (("rakuda_events_published", "Events the bus accepted (all producers).", "published"),
             ("rakuda_events_delivered", "Events written to streams (one per client).", "delivered"),
             ("rakuda_sse_messages", "Stream messages written (a batch is one message).", "messages"))
    for name, doc, field in specs:
        family = CounterMetricFamily(name, doc, labels=["type"])
        for event_type in EVENT_TYPES:
            family.add_metric([event_type], totals.get(f"{field}:{event_type}", 0))
        yield family


def _labelled_counter(name: str, doc: str, label: str, values: list[str], totals: dict[str, int],
                      prefix: str) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value in values:
        family.add_metric([value], totals.get(f"{prefix}:{value}", 0))
    return family


def _latency(totals: dict[str, int]) -> HistogramMetricFamily:
    buckets, running = [], 0
    for index, edge_ms in enumerate(LATENCY_EDGES_MS):
        running += totals.get(f"latency_bucket:{index}", 0)
        buckets.append((repr(edge_ms / 1000), running))
    running += totals.get(f"latency_bucket:{len(LATENCY_EDGES_MS)}", 0)
    buckets.append(("+Inf", running))
    return HistogramMetricFamily("rakuda_sse_delivery_latency_seconds",
                                 "Time from publish to the write to a stream, per event and client.",
                                 buckets=buckets, sum_value=totals.get("latency_sum_us", 0) / 1e6)


def _webhooks(totals: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily("rakuda_webhook_deliveries", "Marketplace webhook deliveries, by outcome.",
                                 labels=["provider", "outcome"])
    for provider in (*PROVIDERS, "unknown"):
        for outcome in WEBHOOK_OUTCOMES:
            family.add_metric([provider, outcome], totals.get(f"webhook:{provider}:{outcome}", 0))
    return family


def _tasks(totals: dict[str, int]) -> Iterator[Metric]:
    runs = CounterMetricFamily("rakuda_task_runs", "Celery task runs, by task and outcome.",
                               labels=["task", "outcome"])
    names = sorted({k.split(":")[1] for k in totals if k.startswith("task_runs:")})
    for task in names:
        for outcome in TASK_OUTCOMES:
            runs.add_metric([task, outcome], totals.get(f"task_runs:{task}:{outcome}", 0))
    yield runs
    duration = HistogramMetricFamily("rakuda_task_duration_seconds", "Celery task run time.", labels=["task"])
    for task in names:
        buckets, running = [], 0
        for index, edge in enumerate(TASK_DURATION_EDGES_S):
            running += totals.get(f"task_duration_bucket:{task}:{index}", 0)
            buckets.append((repr(edge), running))
        running += totals.get(f"task_duration_bucket:{task}:{len(TASK_DURATION_EDGES_S)}", 0)
        buckets.append(("+Inf", running))
        duration.add_metric([task], buckets, totals.get(f"task_duration_sum_us:{task}", 0) / 1e6)
    yield duration


@metrics_bp.get("/metrics")
@require_api_key
def metrics() -> Response:
    return Response(generate_latest(services().metrics), content_type=CONTENT_TYPE_LATEST)


def count_webhook_outcome(response: Response) -> Response:
    """Adds each webhook delivery's outcome to the cluster counters (after the answer is made)."""
    if request.endpoint != "webhooks.receive" or request.method != "POST":
        return response
    provider = (request.view_args or {}).get("provider", "")
    if provider not in PROVIDERS:
        provider = "unknown"  # an attacker's paths must not create label values
    status = response.status_code
    outcome = ("accepted" if status == 202 else "duplicate" if status == 200
               else "rejected" if status < 500 else "failed")
    parts = services()
    parts.counts.add(f"webhook:{provider}:{outcome}")
    if not parts.started:  # no upkeep loop flushes for an app that was never started (a test client)
        try:
            parts.counts.flush(parts.redis)
        except redis.RedisError:
            pass  # a metric is not worth failing a delivery for; kept for the next flush
    return response


def outbox_unsent(database: Database) -> int | None:
    """Outbox rows not yet published; None when the database cannot say (unreachable, no schema)."""
    try:
        with database.engine.connect() as connection:
            query = select(func.count()).select_from(OutboxUnsent)
            return int(connection.execute(query).scalar_one())
    except SQLAlchemyError:
        return None


def build_registry(hub: Hub, count_unsent: Callable[[], int | None]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(hub, count_unsent))
    return registry
