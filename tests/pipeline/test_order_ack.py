"""Operator acknowledgement: the ack route, the dashboard count, and escalation of orders nobody acknowledged."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.models import Order
from tests.notify.conftest import SECRET, NotifierProcess
from tests.notify.receivers import Receiver
from tests.notify.test_notifier import verified_ids
from tests.pipeline import samples
from tests.pipeline.conftest import published_events
from tests.pipeline.test_webhooks_endpoint import post_joom
from tests.waiting import eventually

KEY = {"X-API-Key": "test-key"}


def order_ids(runtime) -> list[int]:
    with runtime.db.transaction() as session:
        return list(session.scalars(select(Order.id).order_by(Order.id)))


@pytest.fixture
def escalation_receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.mark.slow
def test_escalation_fires_for_an_unacknowledged_order_and_not_for_an_acknowledged_one(
        runtime, worker, http, bus_redis, app_settings, escalation_receiver):
    env = {**app_settings.env_items(), "NOTIFY_ESCALATION_WEBHOOK_URL": escalation_receiver.url + "/escalate",
           "NOTIFY_ESCALATION_WEBHOOK_SECRET": SECRET, "ORDER_ACK_ESCALATE_AFTER": "4",
           "ORDER_ACK_MINUTE_SECONDS": "1", "NOTIFY_DASHBOARD_URL": "http://dash.example"}
    notifier = NotifierProcess(env).start()
    try:
        eventually(lambda: any(g["name"] == "notify-escalation" for g in _groups(bus_redis)), timeout=30,
                   what="escalation group")
        assert post_joom(http, samples.joom(id="JO-ACKED")).status_code == 202
        assert post_joom(http, samples.joom(id="JO-FORGOTTEN")).status_code == 202
        eventually(lambda: len(order_ids(runtime)) == 2, what="two orders")
        acked, forgotten = order_ids(runtime)
        assert http.get("/api/orders/unacknowledged", headers=KEY).get_json() == {"count": 2}
        answer = http.post(f"/api/orders/{acked}/ack", headers=KEY)
        assert answer.status_code == 200 and answer.get_json()["acknowledged"] is True
        assert http.post(f"/api/orders/{acked}/ack", headers=KEY).get_json()["alreadyAcknowledged"] is True
        assert http.post("/api/orders/999999/ack", headers=KEY).status_code == 404
        assert http.post(f"/api/orders/{acked}/ack").status_code == 401
        assert http.get("/api/orders/unacknowledged", headers=KEY).get_json() == {"count": 1}
        updates = [e for e in published_events(bus_redis, "ORDER_RECEIVED") if e["payload"]["action"] == "updated"]
        assert [(u["payload"]["id"], u["payload"]["data"]["acknowledged"]) for u in updates] == [(str(acked), True)]
        # A third order, due after the other two: escalations go out in the order they fall due, so
        # once this one's is out, the acknowledged order's would have been too. It stays quiet.
        assert post_joom(http, samples.joom(id="JO-MARKER")).status_code == 202
        eventually(lambda: len(order_ids(runtime)) == 3, what="the third order")
        marker = order_ids(runtime)[2]
        eventually(lambda: len(escalation_receiver.accepted) >= 2, timeout=30, what="two escalations")
        body = escalation_receiver.bodies()[0]
        assert body["kind"] == "escalation" and body["url"] == f"http://dash.example/orders/{forgotten}"
        assert body["events"][0]["payload"]["data"]["orderId"] == "JO-FORGOTTEN"
        assert verified_ids(escalation_receiver) == [f"escalation:{forgotten}", f"escalation:{marker}"]
    finally:
        notifier.stop()


def _groups(client):
    try:
        return [{k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.items()}
                for g in client.xinfo_groups("rakuda:realtime:history")]
    except Exception:
        return []
