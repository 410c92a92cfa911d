"""Price sync: recompute each ACTIVE listing's price, push the ones that moved >1%, record and announce them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared import task_names as names
from shared.models import ExchangeRate, Listing, ListingStatus, PriceHistory, PriceSetting, Product, utcnow
from shared.realtime import RealTimeEvent, RealTimeEventType, utc_now_iso
from tasks.batches import send_batches
from tasks.errors import MissingExchangeRateError, PermanentError, PriceSettingError, TransientError
from tasks.price_sql import PlannedRow, plan_rows, record_rows
from tasks.pricing import Fees, listing_price, moved_enough, shipping_usd
from tasks.registry import RakudaTask, task
from tasks.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Reprice:
    listing_id: int
    marketplace: str
    marketplace_listing_id: str | None
    old_price: Decimal | None
    new_price: Decimal
    shipping: Decimal
    currency: str


@dataclass
class SyncResult:
    examined: int = 0
    changed: int = 0
    retry_ids: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    refused_settings: dict[str, str] = field(default_factory=dict)


def active_listing_ids(rt: Runtime) -> list[int]:
    with rt.db.transaction() as session:
        return list(session.scalars(
            select(Listing.id).where(Listing.status == ListingStatus.ACTIVE).order_by(Listing.id)))


def fees_from(setting: PriceSetting) -> Fees:
    return Fees(setting.marketplace.value, setting.platform_fee_rate, setting.payment_fee_rate,
                setting.ad_rate, setting.profit_rate, setting.default_shipping_usd)


def plan_reprices(rt: Runtime, listing_ids: list[int], result: SyncResult) -> list[Reprice]:
    """The listings among ``listing_ids`` whose computed price moved more than 1%.

    The listings and their products come as plain rows of one joined query.
    """
    with rt.db.transaction() as session:
        rate = session.scalar(select(ExchangeRate.rate).where(ExchangeRate.base == "JPY", ExchangeRate.quote == "USD")
                              .order_by(ExchangeRate.fetched_at.desc()).limit(1))
        if rate is None:
            raise MissingExchangeRateError()
        fees = checked_fees(session.scalars(select(PriceSetting)))
        if rt.db.is_postgresql:
            return plans_from(plan_rows(session, listing_ids, rate, usable(fees)), fees, result)
        rows = session.execute(
            select(Listing.id, Listing.marketplace, Listing.marketplace_listing_id, Listing.listing_price,
                   Listing.currency, Product.purchase_price_jpy, Product.weight_grams)
            .join(Product, Product.id == Listing.product_id)
            .where(Listing.id.in_(listing_ids), Listing.status == ListingStatus.ACTIVE)).all()
    plans = []
    for listing_id, marketplace_enum, remote_id, old_price, currency, purchase_jpy, grams in rows:
        result.examined += 1
        marketplace = marketplace_enum.value
        setting = fees.get(marketplace, f"no price setting for {marketplace}")
        if isinstance(setting, str):
            result.refused_settings[marketplace] = setting
            continue
        shipping = shipping_usd(marketplace, grams, setting)
        price = listing_price(purchase_jpy, rate, shipping, setting)
        if moved_enough(old_price, price):
            plans.append(Reprice(listing_id, marketplace, remote_id, old_price, price, shipping, currency))
    return plans


def usable(fees: dict[str, Fees | str]) -> list[Fees]:
    return [setting for setting in fees.values() if not isinstance(setting, str)]


def plans_from(rows: list[PlannedRow], fees: dict[str, Fees | str], result: SyncResult) -> list[Reprice]:
    """The moved ones among rows priced by PostgreSQL; the ones whose fees were refused, noted."""
    plans = []
    for row in rows:
        result.examined += 1
        if not row.priced:
            setting = fees.get(row.marketplace, f"no price setting for {row.marketplace}")
            result.refused_settings[row.marketplace] = str(setting)
        elif row.moved:
            assert row.new_price is not None and row.shipping is not None
            plans.append(Reprice(row.id, row.marketplace, row.marketplace_listing_id, row.old_price,
                                 row.new_price, row.shipping, row.currency))
    return plans


def checked_fees(settings: Iterable[PriceSetting]) -> dict[str, Fees | str]:
    """Each marketplace's fees, checked once, or why no price can satisfy them."""
    checked: dict[str, Fees | str] = {}
    for setting in settings:
        fees = fees_from(setting)
        try:
            fees.check()
        except PriceSettingError as exc:
            checked[fees.marketplace] = str(exc)
            continue
        checked[fees.marketplace] = fees
    return checked


def sync_prices(rt: Runtime, listing_ids: list[int]) -> SyncResult:
    """Reprice these listings; transient marketplace failures come back in ``retry_ids``."""
    result = SyncResult()
    pushed = []
    for plan in plan_reprices(rt, listing_ids, result):
        try:
            if plan.marketplace_listing_id:
                rt.marketplace.update_price(plan.marketplace, plan.marketplace_listing_id, plan.new_price,
                                            plan.currency)
        except TransientError as exc:
            result.retry_ids.append(plan.listing_id)
            result.errors[plan.listing_id] = str(exc)
            continue
        except PermanentError as exc:
            result.errors[plan.listing_id] = str(exc)
            log.warning("marketplace refused the new price of listing %s: %s", plan.listing_id, exc)
            continue
        pushed.append(plan)
    if pushed:
        record_reprices(rt, pushed, result)
    return result


def record_reprices(rt: Runtime, plans: list[Reprice], result: SyncResult) -> None:
    """Write a batch's new prices with one UPDATE, its history with one INSERT, and its events.

    On PostgreSQL all three are one statement, the events' JSON built by it (:mod:`tasks.price_sql`).
    """
    if rt.db.is_postgresql:
        with rt.outbox.transaction() as changes:
            changes.add_stored(record_rows(changes.session, [(p.listing_id, p.new_price, p.shipping) for p in plans],
                                           utcnow(), utc_now_iso()))
        result.changed += len(changes.stored)
        return
    by_id = {plan.listing_id: plan for plan in plans}
    with rt.outbox.transaction() as changes:
        session = changes.session
        current = session.execute(select(Listing.id, Listing.listing_price, Listing.currency, Listing.marketplace)
                                  .where(Listing.id.in_(by_id)).order_by(Listing.id).with_for_update()).all()
        moved = [(row, by_id[row.id]) for row in current
                 if row.listing_price != by_id[row.id].new_price]  # else a concurrent run already recorded it
        if not moved:
            return
        write_prices(session, [plan for _row, plan in moved])
        write_history(session, [(row.id, row.listing_price, plan.new_price, row.currency) for row, plan in moved])
        now = utc_now_iso()
        changes.emit_all(RealTimeEvent.create(
            RealTimeEventType.PRICE_CHANGE, row.id, "updated",
            {"oldPrice": str(row.listing_price) if row.listing_price is not None else None,
             "newPrice": str(plan.new_price), "currency": row.currency, "listingId": row.id,
             "marketplace": row.marketplace.value, "kind": "listing"}, now,
        ) for row, plan in moved)
        result.changed += len(moved)


def write_prices(session: Session, plans: list[Reprice]) -> None:
    """Set each listing's price and shipping (the path for databases other than PostgreSQL)."""
    table = cast(Table, Listing.__table__)
    session.execute(update(table).where(table.c.id == bindparam("row_id"))
                    .values(listing_price=bindparam("price"), shipping_cost=bindparam("shipping"), updated_at=utcnow()),
                    [{"row_id": p.listing_id, "price": p.new_price, "shipping": p.shipping} for p in plans])


def write_history(session: Session, changes: list[tuple[int, Decimal | None, Decimal, str]]) -> None:
    """One price_history row per (listing id, old price, new price, currency) (databases other than PostgreSQL)."""
    now = utcnow()
    session.execute(insert(PriceHistory), [
        {"listing_id": listing_id, "old_price": old, "new_price": new, "currency": currency,
         "reason": "price_sync", "created_at": now} for listing_id, old, new, currency in changes])


@task(names.PRICE_SYNC)
def queue_price_sync(task: RakudaTask, /) -> int:
    """Queue every ACTIVE listing for repricing, in batches of PRICE_SYNC_BATCH_SIZE."""
    ids = active_listing_ids(task.runtime)
    return send_batches(task.app, names.PRICE_SYNC_BATCH, ids, task.runtime.settings.price_sync_batch_size)


@task(names.PRICE_SYNC_BATCH, autoretry_for=(DBAPIError,))
def sync_price_batch(task: RakudaTask, /, listing_ids: list[int]) -> dict[str, Any]:
    """Reprice these listings; the ones the marketplace failed on transiently are retried alone."""
    result = sync_prices(task.runtime, listing_ids)
    for marketplace, reason in result.refused_settings.items():
        log.error("listings on %s not repriced: %s", marketplace, reason)
    task.retry_the_failed(result.retry_ids, result.errors, "repricing listings")
    return {"examined": result.examined, "changed": result.changed, "refused": result.refused_settings}
