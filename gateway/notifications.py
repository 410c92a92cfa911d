"""Notifications and order acknowledgement: the dead-letter list, retries, the ack button's route.

``GET /api/notifications/dead``, ``POST /api/notifications/dead/<id>/retry`` (admin key);
``POST /api/orders/<id>/ack`` and ``GET /api/orders/unacknowledged`` (API key).
"""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import func, select

from gateway.auth import require_admin_key
from gateway.errors import HttpError
from gateway.params import MAX_ROW_ID, ascii_int
from gateway.services import services
from shared.constants import EVENT_CHANNELS
from shared.exceptions import PublishError
from shared.models import Order
from shared.notify_store import list_dead, requeue_dead
from shared.order_ack import mark_acknowledged
from shared.realtime import RealTimeEvent

notifications_bp = Blueprint("notifications", __name__, url_prefix="/api")



def _redis() -> redis.Redis:
    return services().redis


@notifications_bp.get("/notifications/dead")
@require_admin_key
def dead() -> Response:
    records = list_dead(_redis())
    return jsonify({"total": len(records), "items": records})


@notifications_bp.post("/notifications/dead/<dead_id>/retry")
@require_admin_key
def retry(dead_id: str) -> tuple[Response, int]:
    record = requeue_dead(_redis(), dead_id)
    if record is None:
        raise HttpError(404, f"no dead-lettered notification {dead_id!r}")
    return jsonify({"requeued": True, "id": dead_id, "target": record["target"]}), 202


@notifications_bp.post("/orders/<raw_id>/ack")
def acknowledge(raw_id: str) -> Response:
    services().auth.authenticate(allow_token=True)
    order_id = ascii_int(raw_id, MAX_ROW_ID)
    if order_id is None:  # a path that is not an id names nothing
        raise HttpError(404, f"no order {raw_id!r}")
    presented = request.headers.get("X-API-Key") or request.headers.get("Authorization", "").partition(" ")[2]
    who = services().auth.fingerprint(presented.strip())[:12]
    now = datetime.now(UTC)
    with services().database.transaction() as session:
        order = session.get(Order, order_id, with_for_update=True)
        if order is None:
            raise HttpError(404, f"no order {raw_id}")
        first = order.acknowledged_at is None
        if first:
            order.acknowledged_at = now
            order.acknowledged_by = who
        acknowledged_at = order.acknowledged_at
        data = {"marketplace": order.marketplace.value, "total": str(order.total), "currency": order.currency,
                "orderId": order.marketplace_order_id, "status": order.status.value, "acknowledged": True,
                "acknowledgedAt": acknowledged_at.isoformat() if acknowledged_at else None}
    mark_acknowledged(_redis(), raw_id)
    if first:
        bus = services().bus
        try:
            bus.publish(EVENT_CHANNELS["ORDERS"], RealTimeEvent.create("ORDER_RECEIVED", raw_id, "updated", data))
        except PublishError as exc:
            current_app.logger.warning("acknowledgement of order %s not broadcast: %s", raw_id, exc)
    return jsonify({"id": order_id, "acknowledged": True, "acknowledgedAt": data["acknowledgedAt"],
                    "alreadyAcknowledged": not first})


@notifications_bp.get("/orders/unacknowledged")
def unacknowledged() -> Response:
    services().auth.authenticate(allow_token=True)
    with services().database.new_session() as session:
        count = session.scalar(select(func.count()).select_from(Order).where(Order.acknowledged_at.is_(None)))
    return jsonify({"count": count or 0})
