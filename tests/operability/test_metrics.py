"""/metrics: Prometheus text from prometheus_client, cluster-wide, moving when events flow."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway.prometheus import outbox_unsent
from shared.database import Database
from shared.realtime import RealTimeEvent
from tests.sse_client import SSEClient
from tests.waiting import eventually

FAMILIES = {
    "rakuda_sse_connections": "gauge",
    "rakuda_events_published": "counter",
    "rakuda_events_delivered": "counter",
    "rakuda_sse_messages": "counter",
    "rakuda_sse_delivery_latency_seconds": "histogram",
    "rakuda_sse_clients_dropped": "counter",
    "rakuda_sse_resumes": "counter",
    "rakuda_redis_up": "gauge",
    "rakuda_outbox_unsent": "gauge",
    "rakuda_webhook_deliveries": "counter",
    "rakuda_task_runs": "counter",
    "rakuda_task_duration_seconds": "histogram",
}


def scrape(url: str, key: str = "test-key") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.module_gateway
def test_metrics_need_a_key(gateway):
    assert requests.get(gateway.url + "/metrics", timeout=5).status_code == 401
    assert requests.get(gateway.url + "/metrics", headers={"X-API-Key": "wrong"}, timeout=5).status_code == 401


@pytest.mark.module_gateway
def test_every_family_is_exposed_with_its_type(gateway, migrated):
    response = requests.get(gateway.url + "/metrics", headers=gateway.headers(), timeout=5)
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    for name, kind in FAMILIES.items():
        if name == "rakuda_outbox_unsent":
            continue  # needs the gateway's database; checked below
        assert families.get(name) == kind, f"{name}: {families.get(name)}"


@pytest.mark.module_gateway
def test_a_test_event_counts_once_published_and_once_delivered_per_client(gateway):
    before = scrape(gateway.url)
    streams = [SSEClient(gateway.url + "/api/realtime/events?channels=listings", gateway.headers()) for _ in range(3)]
    try:
        for stream in streams:
            assert stream.next_event(timeout=5).event == "connected"
        eventually(lambda: value(scrape(gateway.url), "rakuda_sse_connections") == 3, what="3 connections")
        published = requests.post(gateway.url + "/api/realtime/test", headers=gateway.headers(), timeout=5)
        assert published.status_code == 201
        for stream in streams:
            assert stream.next_event(timeout=5).event == "LISTING_UPDATE"

        def moved() -> dict | None:
            now = scrape(gateway.url)
            name = "rakuda_events_delivered_total"
            delivered = value(now, name, type="LISTING_UPDATE") - value(before, name, type="LISTING_UPDATE")
            return now if delivered >= 3 else None

        after = eventually(moved, timeout=10, what="deliveries counted")
        for name, per in (("rakuda_events_published_total", 1), ("rakuda_events_delivered_total", 3),
                          ("rakuda_sse_messages_total", 3)):
            delta = value(after, name, type="LISTING_UPDATE") - value(before, name, type="LISTING_UPDATE")
            assert delta == per, f"{name} moved by {delta}, expected {per}"
        count = value(after, "rakuda_sse_delivery_latency_seconds_count") - value(
            before, "rakuda_sse_delivery_latency_seconds_count")
        assert count == 3
        assert value(after, "rakuda_redis_up") == 1
    finally:
        for stream in streams:
            stream.close()


def test_one_scrape_of_either_worker_counts_every_workers_streams(gateway_factory):
    server = gateway_factory(workers=2)
    streams = [SSEClient(server.url + "/api/realtime/events", server.headers()) for _ in range(8)]
    try:
        workers = {stream.next_event(timeout=5).json["processId"] for stream in streams}
        assert len(workers) >= 1
        for _ in range(6):  # the accept race sends scrapes to either worker
            eventually(lambda: value(scrape(server.url), "rakuda_sse_connections") == 8, what="8 streams in a scrape")
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.module_gateway
def test_resumes_and_resets_are_counted(gateway):
    before = scrape(gateway.url)
    stream = SSEClient(gateway.url + "/api/realtime/events", {**gateway.headers(), "Last-Event-ID": "nonsense"})
    try:
        assert stream.next_event(timeout=5).event == "connected"
    finally:
        stream.close()
    eventually(lambda: value(scrape(gateway.url), "rakuda_sse_resumes_total", result="reset")
             == value(before, "rakuda_sse_resumes_total", result="reset") + 1, what="a reset counted")


@pytest.mark.module_gateway
def test_webhook_outcomes_are_counted_by_provider(gateway):
    before = scrape(gateway.url)
    requests.post(gateway.url + "/api/webhooks/joom", data=b"{}", timeout=5)  # not configured: 503 -> failed
    requests.post(gateway.url + "/api/webhooks/nowhere", data=b"{}", timeout=5)  # 404 -> rejected, "unknown"

    def counted() -> bool:
        now = scrape(gateway.url)
        return (value(now, "rakuda_webhook_deliveries_total", provider="joom", outcome="failed")
                - value(before, "rakuda_webhook_deliveries_total", provider="joom", outcome="failed") == 1
                and value(now, "rakuda_webhook_deliveries_total", provider="unknown", outcome="rejected")
                - value(before, "rakuda_webhook_deliveries_total", provider="unknown", outcome="rejected") == 1)

    eventually(counted, timeout=5, what="webhook outcomes")


def test_task_runs_and_durations_reach_the_gateways_metrics(gateway_factory, migrated, worker, celery_app):
    server = gateway_factory(DATABASE_URL=migrated.database_url)
    celery_app.send_task("rakuda.outbox.relay")
    samples = eventually(lambda: (s := scrape(server.url)) and value(
        s, "rakuda_task_runs_total", task="rakuda.outbox.relay", outcome="success") >= 1 and s,
        timeout=15, what="a task run counted")
    assert value(samples, "rakuda_task_duration_seconds_count", task="rakuda.outbox.relay") >= 1
    assert value(samples, "rakuda_outbox_unsent") == 0


def test_outbox_backlog_is_the_number_of_unpublished_rows(migrated):
    database = Database().initialize(migrated.database_url)
    try:
        assert outbox_unsent(database) == 0
        from shared.models import OutboxEvent

        with database.transaction() as session:
            for n in range(3):
                event = RealTimeEvent.create("LISTING_UPDATE", f"l-{n}", "updated", {})
                session.add(OutboxEvent(channel="rakuda:realtime:listings", event_json=event.model_dump_json()))
        assert outbox_unsent(database) == 3
    finally:
        database.dispose()

