"""Publishing a listing: DRAFT/PENDING_PUBLISH/ERROR -> PUBLISHING -> ACTIVE (or ERROR with the reason).

Each step is its own short transaction with its event; the marketplace call sits between
them, outside any transaction. A task killed mid-way finds the listing PUBLISHING and calls
the marketplace again, which is idempotent by SKU.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import task_names as names
from shared.models import Listing, ListingStatus, utcnow
from shared.realtime import RealTimeEvent, RealTimeEventType
from tasks.errors import PermanentError, TransientError
from tasks.registry import RakudaTask, task
from tasks.runtime import Runtime

STARTABLE = {ListingStatus.DRAFT, ListingStatus.PENDING_PUBLISH, ListingStatus.ERROR, ListingStatus.PUBLISHING}


@dataclass(frozen=True)
class PublishJob:
    listing_id: int
    marketplace: str
    sku: str
    title: str
    price: Decimal
    currency: str
    shipping_cost: Decimal


def _event(listing: Listing, action: str, previous: ListingStatus, **extra: object) -> RealTimeEvent:
    data = {"status": listing.status.value, "previousStatus": previous.value,
            "marketplace": listing.marketplace.value, "productId": listing.product_id,
            "sku": listing.sku, **extra}
    return RealTimeEvent.create(RealTimeEventType.LISTING_UPDATE, listing.id, action, data)  # type: ignore[arg-type]


def _locked(session: Session, listing_id: int) -> Listing | None:
    return session.scalars(select(Listing).where(Listing.id == listing_id).with_for_update()).first()


def begin_publish(rt: Runtime, listing_id: int) -> PublishJob | None:
    """Move the listing to PUBLISHING; None when there is nothing to publish (already live, ended…)."""
    with rt.outbox.transaction() as changes:
        listing = _locked(changes.session, listing_id)
        if listing is None or listing.status not in STARTABLE:
            return None
        if listing.listing_price is None:
            previous = listing.status
            listing.status = ListingStatus.ERROR
            listing.error_message = "listing has no price: run a price sync first"
            changes.emit(_event(listing, "updated", previous, error=listing.error_message))
            return None
        if listing.status != ListingStatus.PUBLISHING:
            previous = listing.status
            listing.status = ListingStatus.PUBLISHING
            listing.error_message = None
            changes.emit(_event(listing, "updated", previous))
        return PublishJob(listing.id, listing.marketplace.value, listing.sku, listing.product.title,
                          listing.listing_price, listing.currency, listing.shipping_cost)


def finish_publish(rt: Runtime, listing_id: int, marketplace_listing_id: str) -> bool:
    """PUBLISHING -> ACTIVE with the marketplace's id (LISTING_UPDATE created); False if no longer publishing."""
    with rt.outbox.transaction() as changes:
        listing = _locked(changes.session, listing_id)
        if listing is None or listing.status != ListingStatus.PUBLISHING:
            return False
        listing.status = ListingStatus.ACTIVE
        listing.marketplace_listing_id = marketplace_listing_id
        listing.listed_at = utcnow()
        changes.emit(_event(listing, "created", ListingStatus.PUBLISHING,
                            marketplaceListingId=marketplace_listing_id,
                            price=str(listing.listing_price), currency=listing.currency))
        return True


def fail_publish(rt: Runtime, listing_id: int, reason: str) -> bool:
    """PUBLISHING -> ERROR with ``reason`` (LISTING_UPDATE updated)."""
    with rt.outbox.transaction() as changes:
        listing = _locked(changes.session, listing_id)
        if listing is None or listing.status != ListingStatus.PUBLISHING:
            return False
        listing.status = ListingStatus.ERROR
        listing.error_message = reason[:2000]
        changes.emit(_event(listing, "updated", ListingStatus.PUBLISHING, error=listing.error_message))
        return True


def ended_listing_target(rt: Runtime, listing_id: int) -> tuple[str, str] | None:
    """(marketplace, marketplace listing id) of an ENDED listing to take down, if it was ever live."""
    with rt.db.transaction() as session:
        listing = session.get(Listing, listing_id)
        if listing is None or listing.status != ListingStatus.ENDED or not listing.marketplace_listing_id:
            return None
        return listing.marketplace.value, listing.marketplace_listing_id


def record_end_failure(rt: Runtime, listing_id: int, reason: str) -> None:
    with rt.db.transaction() as session:
        listing = session.get(Listing, listing_id)
        if listing is not None:
            listing.error_message = f"ending on the marketplace failed: {reason}"[:2000]


# Listing tasks retry by hand: once the retries are spent, the listing records why (ERROR) and
# the task ends normally, where autoretry_for would fail the task with the exception.

@task(names.LISTING_PUBLISH)
def publish_listing(task: RakudaTask, /, listing_id: int) -> str:
    rt = task.runtime
    job = begin_publish(rt, listing_id)
    if job is None:
        return "skipped"
    try:
        remote_id = rt.marketplace.create_listing(job.marketplace, job.sku, job.title, job.price, job.currency,
                                                  job.shipping_cost)
    except PermanentError as exc:
        fail_publish(rt, listing_id, str(exc))
        return "error"
    except TransientError as exc:
        if task.can_retry():
            task.retry_with_backoff(exc)
        fail_publish(rt, listing_id, f"gave up after {task.request.retries + 1} attempts: {exc}")
        return "error"
    finish_publish(rt, listing_id, remote_id)
    return "active"


@task(names.LISTING_END)
def end_listing(task: RakudaTask, /, listing_id: int) -> str:
    rt = task.runtime
    target = ended_listing_target(rt, listing_id)
    if target is None:
        return "nothing to end"
    try:
        rt.marketplace.end_listing(*target)
    except TransientError as exc:
        if task.can_retry():
            task.retry_with_backoff(exc)
        record_end_failure(rt, listing_id, str(exc))
        return "error"
    except PermanentError as exc:
        record_end_failure(rt, listing_id, str(exc))
        return "error"
    return "ended"
