"""Applying a stored webhook delivery to the orders: a new order, a status change, or nothing.

The delivery, the order and the ORDER_RECEIVED event change in one transaction under a lock
on the delivery row, so a re-run (a re-delivered task, the sweep) applies it once.

A status notice for an order not created yet *waits*: the delivery stays PENDING, marked with
the order it waits for (``waiting_for``). The creation applies the waiting notices of its order
in the same transaction, in the order they were received. The sweep re-runs the ones still
waiting; one older than ``WEBHOOK_ORPHAN_AFTER`` is FAILED as an orphan, with the reason.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from shared import task_names as names
from shared.models import Listing, Marketplace, Order, OrderLine, OrderStatus, WebhookEvent, WebhookStatus, utcnow
from shared.order_status import refusal
from shared.realtime import RealTimeEvent, RealTimeEventType
from shared.webhook_payloads import OrderNotice, PayloadError, parse_notice
from tasks.outbox import Changes
from tasks.registry import RakudaTask, task
from tasks.runtime import Runtime
from tasks.sold_elsewhere import claim_listings

log = logging.getLogger(__name__)

DONE = {WebhookStatus.COMPLETED, WebhookStatus.IGNORED}


def waiting_key(notice: OrderNotice) -> str:
    return f"{notice.marketplace}:{notice.order_id}"


def apply_webhook_event(rt: Runtime, webhook_event_id: int, ended_listing_ids: list[int] | None = None) -> str:
    """Apply one stored delivery; returns what happened (created, updated, unchanged, ignored, waiting,
    failed, done).

    The listings a new order ended elsewhere are added to ``ended_listing_ids`` (to take down after commit).
    """
    with rt.outbox.transaction() as changes:
        row = changes.session.scalars(
            select(WebhookEvent).where(WebhookEvent.id == webhook_event_id).with_for_update()).first()
        if row is None:
            return "missing"
        if row.status in DONE:
            return "done"
        row.attempts += 1
        row.processed_at = utcnow()
        try:
            notice = parse_notice(row.provider, json.loads(row.raw_body))
        except (ValueError, PayloadError) as exc:
            row.status = WebhookStatus.FAILED
            row.error = f"unreadable delivery: {exc}"
            return "failed"
        if notice is None:
            row.status = WebhookStatus.IGNORED
            row.error = f"topic {row.topic!r} is not about orders"
            return "ignored"
        outcome = apply_notice(changes, notice, json.loads(row.raw_body), ended_listing_ids)
        if outcome == "waiting":
            waited_s = (utcnow() - row.received_at).total_seconds()
            if waited_s >= rt.settings.webhook_orphan_after_s:
                row.status = WebhookStatus.FAILED
                row.waiting_for = None
                row.error = (f"orphan: order {notice.order_id} on {notice.marketplace} was never created "
                             f"within WEBHOOK_ORPHAN_AFTER ({rt.settings.webhook_orphan_after_s:g} s)")
                return "failed"
            row.waiting_for = waiting_key(notice)
            row.error = f"waiting for order {notice.order_id} on {notice.marketplace} to be created"
            return "waiting"
        settle(row, outcome)
        return outcome


def settle(row: WebhookEvent, outcome: str) -> None:
    """The delivery's final state for what applying it did."""
    row.waiting_for = None
    if outcome.startswith("ignored: "):
        row.status = WebhookStatus.IGNORED
        row.error = outcome.removeprefix("ignored: ")
    else:
        row.status = WebhookStatus.COMPLETED
        row.error = None


def apply_waiting(changes: Changes, notice: OrderNotice) -> int:
    """Apply the notices that were waiting for this order's creation, oldest first; how many."""
    rows = changes.session.scalars(
        select(WebhookEvent).where(WebhookEvent.waiting_for == waiting_key(notice),
                                   WebhookEvent.status == WebhookStatus.PENDING)
        .order_by(WebhookEvent.received_at, WebhookEvent.id).with_for_update()).all()
    for row in rows:
        waiting = parse_notice(row.provider, json.loads(row.raw_body))
        if waiting is None:
            continue
        row.attempts += 1
        row.processed_at = utcnow()
        settle(row, apply_notice(changes, waiting, json.loads(row.raw_body)))
    return len(rows)


def _order_event(order: Order, action: str, **extra: object) -> RealTimeEvent:
    data = {"marketplace": order.marketplace.value, "total": str(order.total), "currency": order.currency,
            "orderId": order.marketplace_order_id, "status": order.status.value, **extra}
    return RealTimeEvent.create(RealTimeEventType.ORDER_RECEIVED, order.id, action, data)  # type: ignore[arg-type]


def apply_notice(changes: Changes, notice: OrderNotice, raw: dict[str, Any],
                 ended_listing_ids: list[int] | None = None) -> str:
    """created, updated, unchanged, waiting, failed, or ``ignored: <reason>`` for a backwards status."""
    session = changes.session
    marketplace = Marketplace(notice.marketplace)
    order = session.scalars(select(Order).where(Order.marketplace == marketplace,
                                                Order.marketplace_order_id == notice.order_id)
                            .with_for_update()).first()
    if order is None:
        if notice.total is None or notice.currency is None:
            return "waiting"  # a status notice that came before its order's creation
        order = Order(
            marketplace=marketplace, marketplace_order_id=notice.order_id,
            buyer_name=notice.buyer_name, buyer_email=notice.buyer_email,
            subtotal=notice.subtotal if notice.subtotal is not None else notice.total,
            shipping_cost=notice.shipping_cost or 0, tax=notice.tax or 0, total=notice.total,
            currency=notice.currency, status=OrderStatus(notice.status or "PENDING"), raw_data=raw,
            ordered_at=notice.ordered_at,
        )
        skus = [line.sku for line in notice.lines if line.sku]
        listing_ids = dict(session.execute(select(Listing.sku, Listing.id).where(Listing.sku.in_(skus))).all()) \
            if skus else {}
        order.lines = [OrderLine(sku=line.sku, title=line.title, quantity=line.quantity, unit_price=line.price,
                                 listing_id=listing_ids.get(line.sku)) for line in notice.lines]
        session.add(order)
        session.flush()
        claim = claim_listings(changes, order)
        if ended_listing_ids is not None:
            ended_listing_ids += claim.ended_listing_ids
        changes.emit(_order_event(order, "created", **({"oversold": True} if order.oversold else {})))
        apply_waiting(changes, notice)
        return "created"
    if notice.status is None or order.status.value == notice.status:
        return "unchanged"
    refused = refusal(order.status, OrderStatus(notice.status))
    if refused is not None:
        log.info("order %s: %s notice ignored (%s)", order.id, notice.status, refused)
        return f"ignored: {notice.status} for order {notice.order_id} ignored: {refused}"
    previous = order.status
    order.status = OrderStatus(notice.status)
    order.raw_data = raw
    changes.emit(_order_event(order, "updated", previousStatus=previous.value))
    return "updated"


def stale_pending_ids(rt: Runtime, older_than_s: float, now: datetime | None = None) -> list[int]:
    """PENDING deliveries received more than ``older_than_s`` ago (their task was lost or never sent)."""
    cutoff = (now or utcnow()) - timedelta(seconds=older_than_s)
    with rt.db.transaction() as session:
        return list(session.scalars(select(WebhookEvent.id).where(
            WebhookEvent.status == WebhookStatus.PENDING, WebhookEvent.received_at < cutoff,
        ).order_by(WebhookEvent.id).limit(1000)))


# DBAPIError includes IntegrityError: e.g. two deliveries creating one order at once.
@task(names.WEBHOOK_PROCESS, autoretry_for=(DBAPIError,))
def process_webhook(task: RakudaTask, /, webhook_event_id: int) -> str:
    ended: list[int] = []
    outcome = apply_webhook_event(task.runtime, webhook_event_id, ended)
    for listing_id in ended:  # the product sold here: take its other listings down
        task.app.send_task(names.LISTING_END, args=[listing_id])
    return outcome


@task(names.WEBHOOK_SWEEP)
def sweep_webhooks(task: RakudaTask, /) -> int:
    """Queue PENDING deliveries whose task was lost (broker down at receive time)."""
    ids = stale_pending_ids(task.runtime, task.runtime.settings.webhook_sweep_after_s)
    for webhook_event_id in ids:
        task.app.send_task(names.WEBHOOK_PROCESS, args=[webhook_event_id])
    return len(ids)
