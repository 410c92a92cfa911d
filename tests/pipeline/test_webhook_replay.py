"""Replayed and late webhook notices: a body is stored once, and an order's status only moves forward."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from shared.models import Order, OrderStatus, WebhookEvent, WebhookStatus
from shared.order_status import refusal
from tests.pipeline import samples
from tests.pipeline.conftest import published_events
from tests.waiting import eventually

JOOM_SECRET = "joom-test-secret"


def post_joom(http, body, delivery_id=None):
    raw = samples.encode(body)
    return http.post("/api/webhooks/joom", data=raw, headers=samples.joom_headers(raw, JOOM_SECRET, delivery_id))


def stored(runtime) -> list[WebhookEvent]:
    with runtime.db.transaction() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def order_status(runtime) -> OrderStatus:
    with runtime.db.transaction() as session:
        return session.scalars(select(Order)).one().status


def test_a_captured_body_sent_again_under_a_new_delivery_id_is_a_duplicate(runtime, http):
    first = post_joom(http, samples.JOOM_ORDER_CREATED, delivery_id="joom-1")
    replay = post_joom(http, samples.JOOM_ORDER_CREATED, delivery_id="attacker-replay-1")
    assert first.status_code == 202
    assert replay.status_code == 200 and replay.json["status"] == "duplicate"
    assert len(stored(runtime)) == 1


def test_a_late_paid_notice_cannot_move_a_cancelled_order_back(runtime, worker, http, bus_redis):
    order_id = samples.JOOM_ORDER_CREATED["order"]["id"]
    assert post_joom(http, samples.JOOM_ORDER_CREATED).status_code == 202
    assert post_joom(http, {"event": "order.cancelled", "order": {"id": order_id}}).status_code == 202
    eventually(lambda: len(published_events(bus_redis, "ORDER_RECEIVED")) == 2, what="created + cancelled")
    assert order_status(runtime) == OrderStatus.CANCELLED
    # A paid notice that arrives after the cancel (a different body: not a byte-for-byte replay).
    late = post_joom(http, {"event": "order.paid", "order": {"id": order_id, "paid_at": "2026-11-28T10:00:00Z"}})
    assert late.status_code == 202
    eventually(lambda: stored(runtime)[-1].status == WebhookStatus.IGNORED, what="the late notice ignored")
    ignored = stored(runtime)[-1]
    assert "CANCELLED" in (ignored.error or "") and "PAID" in (ignored.error or "")
    assert order_status(runtime) == OrderStatus.CANCELLED
    assert len(published_events(bus_redis, "ORDER_RECEIVED")) == 2  # nothing emitted for it


S = OrderStatus
ALLOWED = {
    (S.PENDING, S.PAID), (S.PENDING, S.SHIPPED), (S.PENDING, S.DELIVERED), (S.PAID, S.SHIPPED),
    (S.PAID, S.DELIVERED), (S.SHIPPED, S.DELIVERED),
    (S.PENDING, S.CANCELLED), (S.PAID, S.CANCELLED), (S.SHIPPED, S.CANCELLED),
    (S.PENDING, S.REFUNDED), (S.PAID, S.REFUNDED), (S.SHIPPED, S.REFUNDED), (S.DELIVERED, S.REFUNDED),
    (S.CANCELLED, S.REFUNDED),
}


@pytest.mark.parametrize(("current", "new"), [p for p in itertools.product(S, S) if p[0] != p[1]])
def test_status_only_moves_forward(current, new):
    assert (refusal(current, new) is None) == ((current, new) in ALLOWED), (current, new)


def test_the_migration_keeps_replays_stored_before_it(pipeline_settings):
    import sqlalchemy as sa

    from shared.database import make_engine
    from tasks.schema import upgrade

    url = pipeline_settings.database_url
    upgrade(url, "0001")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for delivery in ("d-1", "replay-1"):
                connection.execute(sa.text(
                    "INSERT INTO webhook_events (provider, delivery_id, topic, raw_body, headers, status, attempts,"
                    " received_at) VALUES ('joom', :d, 'order.paid', '{}', '{}', 'COMPLETED', 1, now())"),
                    {"d": delivery})
        upgrade(url)
        with engine.begin() as connection:
            hashes = connection.execute(sa.text("SELECT body_sha256 FROM webhook_events ORDER BY id")).scalars().all()
        assert hashes[0] is not None and hashes[1] is None
    finally:
        engine.dispose()
