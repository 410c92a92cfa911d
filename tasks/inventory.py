"""Inventory checks: compare each product with its supplier, record what changed, end listings of sold-out items.

Supplier calls happen outside any transaction; the comparison and the update happen under a
row lock, so two checks of one product (a re-delivered task, a double sweep) change it and
announce it once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import DBAPIError

from shared import task_names as names
from shared.models import Listing, ListingStatus, Product, ProductStatus, utcnow
from shared.realtime import RealTimeEvent, RealTimeEventType
from tasks.batches import send_batches
from tasks.errors import PermanentError, TransientError
from tasks.outbox import Changes
from tasks.registry import RakudaTask, task
from tasks.runtime import Runtime
from tasks.supplier import SupplierItem

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    checked: int = 0
    availability_changes: int = 0
    price_changes: int = 0
    retry_ids: list[int] = field(default_factory=list)  # transient supplier failures
    ended_listing_ids: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)


def due_product_ids(rt: Runtime, now: datetime | None = None, everything: bool = False) -> list[int]:
    """Products never checked or checked longer than INVENTORY_RECHECK_AFTER ago, oldest first."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=rt.settings.inventory_recheck_after_s)
    query = select(Product.id).where(Product.status != ProductStatus.DISCONTINUED)
    if not everything:
        query = query.where(or_(Product.last_checked_at.is_(None), Product.last_checked_at < cutoff))
    query = query.order_by(Product.last_checked_at.asc().nulls_first(), Product.id)
    with rt.db.transaction() as session:
        return list(session.scalars(query))


def fetch_from_supplier(rt: Runtime, product_ids: list[int], result: CheckResult) -> dict[int, SupplierItem]:
    with rt.db.transaction() as session:
        keys = session.execute(
            select(Product.id, Product.source, Product.source_item_id).where(Product.id.in_(product_ids))
        ).all()
    fetched: dict[int, SupplierItem] = {}
    for product_id, source, item_id in keys:
        try:
            fetched[product_id] = rt.supplier.fetch(source.value, item_id)
        except TransientError as exc:
            result.retry_ids.append(product_id)
            result.errors[product_id] = str(exc)
        except PermanentError as exc:
            result.errors[product_id] = str(exc)
            log.warning("supplier refused product %s: %s", product_id, exc)
    return fetched


def check_products(rt: Runtime, product_ids: list[int]) -> CheckResult:
    """Check these products now: update what changed and emit its events (after the commit)."""
    result = CheckResult()
    fetched = fetch_from_supplier(rt, product_ids, result)
    if not fetched:
        return result
    threshold = rt.settings.price_change_threshold_percent
    now = utcnow()
    with rt.outbox.transaction() as changes:
        session = changes.session
        products = session.scalars(
            select(Product).where(Product.id.in_(fetched)).order_by(Product.id).with_for_update()
        ).all()
        for product in products:
            item = fetched[product.id]
            result.checked += 1
            product.last_checked_at = now
            state = item.state_hash()
            if state == product.source_state_hash:
                continue
            product.source_state_hash = state
            if item.available != product.is_available:
                previous = product.is_available
                product.is_available = item.available
                product.status = ProductStatus.ACTIVE if item.available else ProductStatus.OUT_OF_STOCK
                result.availability_changes += 1
                changes.emit(RealTimeEvent.create(
                    RealTimeEventType.INVENTORY_CHANGE, product.id, "updated",
                    {"isAvailable": item.available, "previous": previous, "productId": product.id,
                     "source": product.source.value, "sourceItemId": product.source_item_id,
                     "title": product.title},
                ))
                if not item.available:
                    result.ended_listing_ids += end_active_listings(changes, product, reason="out_of_stock")
            if item.price_jpy is not None and item.price_jpy != product.purchase_price_jpy:
                old = product.purchase_price_jpy
                product.purchase_price_jpy = item.price_jpy
                percent = abs(item.price_jpy - old) * 100 / old if old else 100.0
                if percent >= threshold:
                    result.price_changes += 1
                    changes.emit(RealTimeEvent.create(
                        RealTimeEventType.PRICE_CHANGE, product.id, "updated",
                        {"oldPrice": old, "newPrice": item.price_jpy, "currency": "JPY", "productId": product.id,
                         "changePercent": round(percent, 2), "kind": "purchase"},
                    ))
    return result


def end_active_listings(changes: Changes, product: Product, reason: str) -> list[int]:
    """Mark the product's ACTIVE listings ENDED (LISTING_UPDATE deleted each); their ids."""
    listings = changes.session.scalars(
        select(Listing).where(Listing.product_id == product.id, Listing.status == ListingStatus.ACTIVE)
        .with_for_update()
    ).all()
    for listing in listings:
        listing.status = ListingStatus.ENDED
        listing.end_reason = reason
        changes.emit(RealTimeEvent.create(
            RealTimeEventType.LISTING_UPDATE, listing.id, "deleted",
            {"status": ListingStatus.ENDED.value, "previousStatus": ListingStatus.ACTIVE.value,
             "marketplace": listing.marketplace.value, "productId": product.id, "reason": reason},
        ))
    return [listing.id for listing in listings]


@task(names.INVENTORY_SWEEP)
def sweep_inventory(task: RakudaTask, /, everything: bool = False) -> int:
    """Queue the products due for a check, in batches of INVENTORY_BATCH_SIZE."""
    ids = due_product_ids(task.runtime, everything=everything)
    return send_batches(task.app, names.INVENTORY_CHECK_BATCH, ids, task.runtime.settings.inventory_batch_size)


@task(names.INVENTORY_CHECK_BATCH, autoretry_for=(DBAPIError,))
def check_inventory_batch(task: RakudaTask, /, product_ids: list[int]) -> dict[str, Any]:
    """Check these products; the ones the supplier failed on transiently are retried alone."""
    result = check_products(task.runtime, product_ids)
    for listing_id in result.ended_listing_ids:
        task.app.send_task(names.LISTING_END, args=[listing_id])
    task.retry_the_failed(result.retry_ids, result.errors, "checking products")
    return {"checked": result.checked, "availability": result.availability_changes,
            "prices": result.price_changes}
