"""POST /api/webhooks/<provider>: signatures over raw bytes, validation, storage, and the task that applies it."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import func, select

from shared import task_names
from shared.models import Order, OrderStatus, WebhookEvent, WebhookStatus
from tasks.runtime import Runtime
from tests.pipeline import samples
from tests.pipeline.conftest import published_events
from tests.waiting import eventually

JOOM_SECRET = "joom-test-secret"
EBAY_SECRET = "ebay-test-secret"


def count(runtime: Runtime, model) -> int:
    with runtime.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def orders(runtime: Runtime) -> list[Order]:
    with runtime.db.transaction() as session:
        return session.scalars(select(Order).order_by(Order.id)).all()


def post_joom(http, body, secret=JOOM_SECRET, delivery_id=None):
    raw = samples.encode(body)
    return http.post("/api/webhooks/joom", data=raw, headers=samples.joom_headers(raw, secret, delivery_id))


def test_signed_joom_delivery_becomes_one_order_and_one_order_received(runtime, worker, http, bus_redis):
    response = post_joom(http, samples.JOOM_ORDER_CREATED)
    assert response.status_code == 202, response.json
    assert response.json["status"] == "accepted" and response.json["queued"] is True
    eventually(lambda: published_events(bus_redis, "ORDER_RECEIVED"), what="ORDER_RECEIVED")

    (order,) = orders(runtime)
    assert (order.marketplace.value, order.marketplace_order_id, order.status) == ("JOOM", "JO-1001",
                                                                                     OrderStatus.PENDING)
    assert str(order.total) == "50.20" and order.buyer_email == "ann@example.com"
    (event,) = published_events(bus_redis)
    assert event["payload"]["action"] == "created" and event["payload"]["id"] == str(order.id)
    data = event["payload"]["data"]
    assert (data["marketplace"], data["total"], data["currency"]) == ("JOOM", "50.20", "USD")
    with runtime.db.transaction() as session:
        stored = session.scalars(select(WebhookEvent)).one()
        assert stored.status == WebhookStatus.COMPLETED and stored.attempts == 1
        assert stored.delivery_id == hashlib.sha256(samples.encode(samples.JOOM_ORDER_CREATED)).hexdigest()


def test_signed_ebay_delivery_becomes_one_order_and_one_order_received(runtime, worker, http, bus_redis):
    raw = samples.encode(samples.EBAY_ORDER_CREATED)
    response = http.post("/api/webhooks/ebay", data=raw, headers=samples.ebay_headers(raw, EBAY_SECRET))
    assert response.status_code == 202, response.json
    assert response.json["deliveryId"] == "n-5001"
    eventually(lambda: published_events(bus_redis, "ORDER_RECEIVED"))
    (order,) = orders(runtime)
    assert (order.marketplace.value, order.marketplace_order_id, order.status, str(order.total)) == (
        "EBAY", "12-34567-89012", OrderStatus.PAID, "88.00")
    (event,) = published_events(bus_redis)
    assert (event["payload"]["action"], event["payload"]["data"]["marketplace"]) == ("created", "EBAY")


def test_duplicate_delivery_answers_200_and_leaves_one_order_and_one_event(runtime, worker, http, bus_redis,
                                                                          tasks_done):
    first = post_joom(http, samples.JOOM_ORDER_CREATED)
    second = post_joom(http, samples.JOOM_ORDER_CREATED)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json["status"] == "duplicate"
    # the same signed body under another delivery id (which the signature does not cover) is a replay
    third = post_joom(http, samples.JOOM_ORDER_CREATED, delivery_id="attacker-replay-1")
    assert third.status_code == 200 and third.json["status"] == "duplicate"
    eventually(lambda: all(e.status == WebhookStatus.COMPLETED for e in _events(runtime)))
    assert len(_events(runtime)) == 1
    eventually(lambda: published_events(bus_redis, "ORDER_RECEIVED"))
    tasks_done()  # whatever the three deliveries queued has run
    assert len(orders(runtime)) == 1
    assert len(published_events(bus_redis, "ORDER_RECEIVED")) == 1


def _events(runtime):
    with runtime.db.transaction() as session:
        return session.scalars(select(WebhookEvent)).all()


def test_status_change_emits_order_received_updated(runtime, worker, http, bus_redis):
    assert post_joom(http, samples.JOOM_ORDER_CREATED).status_code == 202
    paid = {"event": "order.paid", "order": {"id": "JO-1001"}}
    assert post_joom(http, paid).status_code == 202
    eventually(lambda: len(published_events(bus_redis, "ORDER_RECEIVED")) == 2)
    created, updated = published_events(bus_redis, "ORDER_RECEIVED")
    assert (created["payload"]["action"], updated["payload"]["action"]) == ("created", "updated")
    assert updated["payload"]["data"]["status"] == "PAID" and updated["payload"]["data"]["previousStatus"] == "PENDING"
    assert updated["payload"]["data"]["total"] == "50.20"
    assert orders(runtime)[0].status == OrderStatus.PAID


def _joom_raw(body=None):
    return samples.encode(body or samples.JOOM_ORDER_CREATED)


def _bad_requests():
    raw = _joom_raw()
    ebay_raw = samples.encode(samples.EBAY_ORDER_CREATED)
    missing_total = samples.joom()
    del missing_total["order"]["total"]
    missing_raw = samples.encode(missing_total)
    not_json = b'{"event": "order.created", "order": '
    big = samples.joom(buyer_name="x" * 20000)
    big_raw = samples.encode(big)
    return {
        "bad joom signature": ("joom", raw, samples.joom_headers(raw, "wrong-secret"), 401, "invalid X-Joom-Signature"),
        "signature of other bytes": ("joom", raw, samples.joom_headers(raw + b" ", JOOM_SECRET), 401, "invalid"),
        "no signature": ("joom", raw, {"Content-Type": "application/json"}, 401, "missing X-Joom-Signature"),
        "malformed json": ("joom", not_json, samples.joom_headers(not_json, JOOM_SECRET), 400, "not valid JSON"),
        "missing field": ("joom", missing_raw, samples.joom_headers(missing_raw, JOOM_SECRET), 400, "order.total"),
        "oversize": ("joom", big_raw, samples.joom_headers(big_raw, JOOM_SECRET), 413, "WEBHOOK_MAX_BYTES"),
        "stale ebay timestamp": ("ebay", ebay_raw, samples.ebay_headers(ebay_raw, EBAY_SECRET, time.time() - 301),
                                 401, "5 minutes"),
        "bad ebay signature": ("ebay", ebay_raw, samples.ebay_headers(ebay_raw, "nope"), 401, "invalid X-EBAY"),
        "unknown provider": ("amazon", raw, samples.joom_headers(raw, JOOM_SECRET), 404, "unknown webhook provider"),
    }


@pytest.mark.parametrize("case", list(_bad_requests()))
def test_rejected_delivery_stores_nothing_and_says_why(case, runtime, http):
    provider, raw, headers, status, message = _bad_requests()[case]
    response = http.post(f"/api/webhooks/{provider}", data=raw, headers=headers)
    assert response.status_code == status, response.json
    assert message in response.json["error"]
    assert count(runtime, WebhookEvent) == 0 and count(runtime, Order) == 0


def test_missing_ebay_field_is_named_in_the_400(http, runtime):
    body = samples.EBAY_ORDER_CREATED | {"notification": {"data": {"orderId": "x"}}}
    raw = samples.encode(body)
    response = http.post("/api/webhooks/ebay", data=raw, headers=samples.ebay_headers(raw, EBAY_SECRET))
    assert response.status_code == 400
    assert response.json["field"] == "notification.data.pricingSummary.total.value"


def test_ebay_challenge_answers_sha256_of_code_token_endpoint(http, app_settings):
    response = http.get("/api/webhooks/ebay?challenge_code=abc123")
    expected = hashlib.sha256(
        ("abc123" + app_settings.ebay_verification_token + app_settings.ebay_webhook_endpoint).encode()).hexdigest()
    assert response.status_code == 200 and response.json == {"challengeResponse": expected}
    assert http.get("/api/webhooks/ebay").status_code == 400


def test_admin_routes_require_the_api_key(http, runtime, worker, bus_redis):
    assert post_joom(http, samples.JOOM_ORDER_CREATED).status_code == 202
    assert http.get("/api/webhooks/events").status_code == 401
    assert http.get("/api/webhooks/events/").status_code in (401, 404)
    assert http.post("/api/webhooks/events/1/retry").status_code == 401
    listed = http.get("/api/webhooks/events", headers={"X-API-Key": "test-key"})
    assert listed.status_code == 200 and listed.json["events"][0]["deliveryId"]
    eventually(lambda: published_events(bus_redis))
    retried = http.post("/api/webhooks/events/1/retry", headers={"X-API-Key": "test-key"})
    assert retried.status_code == 409  # COMPLETED deliveries are not re-applied


def test_failed_delivery_can_be_listed_and_retried_with_the_key(http, runtime, worker):
    # a status change for an order never created in time (an orphan): stored, then FAILED with the reason
    runtime.settings = runtime.settings.replace(webhook_orphan_after_s=0.0)
    assert post_joom(http, {"event": "order.paid", "order": {"id": "JO-404"}}).status_code == 202
    eventually(lambda: [e for e in _events(runtime) if e.status == WebhookStatus.FAILED])
    key = {"X-API-Key": "test-key"}
    (failed,) = http.get("/api/webhooks/events?status=failed", headers=key).json["events"]
    assert "JO-404 on JOOM was never created" in failed["error"] and failed["attempts"] == 1
    retried = http.post(f"/api/webhooks/events/{failed['id']}/retry", headers=key)
    assert retried.status_code == 202 and retried.json["status"] == "PENDING" and retried.json["queued"] is True
    eventually(lambda: _events(runtime)[0].attempts == 2, what="the retried delivery processed again")
    assert http.post("/api/webhooks/events/999/retry", headers=key).status_code == 404


def test_broker_down_at_receive_deliveries_are_kept_and_the_sweep_applies_them(app_settings, runtime, celery_app,
                                                                                bus_redis):
    from celery.contrib.testing.worker import start_worker

    from gateway.app import create_app
    from gateway.services import services_of
    from gateway.webhooks import webhooks_bp
    from tests.servers import free_port

    down = app_settings.replace(celery_broker_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(down)
    if "webhooks" not in app.blueprints:
        app.register_blueprint(webhooks_bp)
    try:
        started = time.monotonic()
        response = post_joom(app.test_client(), samples.JOOM_ORDER_CREATED)
        assert time.monotonic() - started < 5  # fails fast, does not hang on the broker
        assert response.status_code == 202 and response.json["queued"] is False
        assert [e.status for e in _events(runtime)] == [WebhookStatus.PENDING]
        # The broker failed a moment ago: the next deliveries are stored and answered without
        # waiting for it again (the sweep queues them).
        for order_id in ("JO-2", "JO-3"):
            started = time.monotonic()
            response = post_joom(app.test_client(), samples.joom(id=order_id))
            assert response.status_code == 202 and response.json["queued"] is False
            assert time.monotonic() - started < 1.0
        assert [e.status for e in _events(runtime)] == [WebhookStatus.PENDING] * 3
    finally:
        services_of(app).close()

    runtime.settings = runtime.settings.replace(webhook_sweep_after_s=0.0)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        celery_app.send_task(task_names.WEBHOOK_SWEEP)
        eventually(lambda: len(published_events(bus_redis, "ORDER_RECEIVED")) == 3, what="the swept deliveries applied")
    assert len(orders(runtime)) == 3


def test_ebay_topic_not_about_orders_is_stored_and_ignored(http, runtime, worker, bus_redis):
    body = {"metadata": {"topic": "MARKETPLACE_ACCOUNT_DELETION", "notificationId": "n-9"},
            "notification": {"data": {"username": "bob"}}}
    raw = samples.encode(body)
    assert http.post("/api/webhooks/ebay", data=raw, headers=samples.ebay_headers(raw, EBAY_SECRET)).status_code == 202
    eventually(lambda: [e for e in _events(runtime) if e.status == WebhookStatus.IGNORED])
    assert orders(runtime) == [] and published_events(bus_redis) == []


def test_unknown_joom_event_is_a_400_naming_the_field(http, runtime):
    response = post_joom(http, {"event": "order.teleported", "order": {"id": "JO-1"}})
    assert response.status_code == 400 and response.json["field"] == "event"
    assert "order.created" in response.json["error"]
    assert count(runtime, WebhookEvent) == 0
