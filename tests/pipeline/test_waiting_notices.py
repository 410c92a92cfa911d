"""Status notices that come before their order's creation wait, and apply when it arrives; orphans fail."""

from __future__ import annotations

import time

from sqlalchemy import select

from shared import task_names
from shared.models import Order, OrderStatus, WebhookEvent, WebhookStatus
from tasks.runtime import Runtime
from tests.pipeline import samples
from tests.pipeline.conftest import published_events
from tests.waiting import eventually

JOOM_SECRET = "joom-test-secret"


def post_joom(http, body):
    raw = samples.encode(body)
    return http.post("/api/webhooks/joom", data=raw, headers=samples.joom_headers(raw, JOOM_SECRET))


def deliveries(runtime: Runtime) -> list[WebhookEvent]:
    with runtime.db.transaction() as session:
        return session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()


def test_notices_before_the_creation_wait_and_apply_when_it_arrives(runtime, worker, http, bus_redis):
    assert post_joom(http, {"event": "order.paid", "order": {"id": "JO-1001"}}).status_code == 202
    shipped = {"event": "order.status_changed", "order": {"id": "JO-1001", "status": "shipped"}}
    assert post_joom(http, shipped).status_code == 202
    eventually(lambda: all(d.attempts for d in deliveries(runtime)), what="both notices tried")
    waiting = deliveries(runtime)
    assert [(d.status, d.waiting_for) for d in waiting] == [(WebhookStatus.PENDING, "JOOM:JO-1001")] * 2
    assert "waiting for order JO-1001" in waiting[0].error
    assert published_events(bus_redis, "ORDER_RECEIVED") == []

    assert post_joom(http, samples.JOOM_ORDER_CREATED).status_code == 202  # no admin action in between
    events = eventually(lambda: len(published_events(bus_redis, "ORDER_RECEIVED")) == 3
                      and published_events(bus_redis, "ORDER_RECEIVED"), what="created + two updates")
    assert [(e["payload"]["action"], e["payload"]["data"]["status"]) for e in events] == [
        ("created", "PENDING"), ("updated", "PAID"), ("updated", "SHIPPED")]
    with runtime.db.transaction() as session:
        assert session.scalars(select(Order.status)).one() == OrderStatus.SHIPPED
    assert [(d.status, d.waiting_for, d.error) for d in deliveries(runtime)] == [
        (WebhookStatus.COMPLETED, None, None)] * 3


def test_the_sweep_retries_waiting_notices_and_fails_orphans_with_the_reason(runtime, celery_app, worker, http):
    assert post_joom(http, {"event": "order.paid", "order": {"id": "JO-404"}}).status_code == 202
    eventually(lambda: deliveries(runtime)[0].attempts == 1, what="the first try")
    runtime.settings = runtime.settings.replace(webhook_sweep_after_s=0.0)
    celery_app.send_task(task_names.WEBHOOK_SWEEP)
    eventually(lambda: deliveries(runtime)[0].attempts == 2, what="the sweep's retry")
    assert deliveries(runtime)[0].status == WebhookStatus.PENDING  # still waiting, not failed

    time.sleep(0.2)
    runtime.settings = runtime.settings.replace(webhook_orphan_after_s=0.1)
    celery_app.send_task(task_names.WEBHOOK_SWEEP)
    (orphan,) = eventually(lambda: [d for d in deliveries(runtime) if d.status == WebhookStatus.FAILED],
                         what="the orphan failed")
    assert orphan.waiting_for is None
    assert "orphan: order JO-404 on JOOM was never created within WEBHOOK_ORPHAN_AFTER" in orphan.error
