"""Publishing a listing: DRAFT/PENDING_PUBLISH/ERROR -> PUBLISHING -> ACTIVE (or ERROR with the reason).

Each step is its own short transaction with its event; the marketplace call sits between
them, outside any transaction. A task killed mid-way finds the listing PUBLISHING and calls
the marketplace again, which is idempotent by SKU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import task_names as names
from shared.models import Listing, ListingStatus, utcnow
from shared.realtime import Action, RealTimeEvent, RealTimeEventType
from tasks.errors import PermanentError, TransientError
from tasks.outbox import Changes
from tasks.registry import RakudaTask, task
from tasks.runtime import Runtime

T = TypeVar("T")

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


def _move(changes: Changes, listing: Listing, status: ListingStatus, action: Action, **extra: object) -> None:
    """Set the listing's status and emit its LISTING_UPDATE, naming the status it left."""
    previous = listing.status
    listing.status = status
    data = {"status": status.value, "previousStatus": previous.value, "marketplace": listing.marketplace.value,
            "productId": listing.product_id, "sku": listing.sku, **extra}
    changes.emit(RealTimeEvent.create(RealTimeEventType.LISTING_UPDATE, listing.id, action, data))


def _locked(session: Session, listing_id: int) -> Listing | None:
    return session.scalars(select(Listing).where(Listing.id == listing_id).with_for_update()).first()


@contextmanager
def _publishing(rt: Runtime, listing_id: int) -> Iterator[tuple[Changes, Listing | None]]:
    """A transaction with events, and the listing locked in it if it is PUBLISHING (None otherwise)."""
    with rt.outbox.transaction() as changes:
        listing = _locked(changes.session, listing_id)
        yield changes, listing if listing is not None and listing.status == ListingStatus.PUBLISHING else None


def begin_publish(rt: Runtime, listing_id: int) -> PublishJob | None:
    """Move the listing to PUBLISHING; None when there is nothing to publish (already live, ended…)."""
    with rt.outbox.transaction() as changes:
        listing = _locked(changes.session, listing_id)
        if listing is None or listing.status not in STARTABLE:
            return None
        if listing.listing_price is None:
            listing.error_message = "listing has no price: run a price sync first"
            _move(changes, listing, ListingStatus.ERROR, "updated", error=listing.error_message)
            return None
        if listing.status != ListingStatus.PUBLISHING:
            listing.error_message = None
            _move(changes, listing, ListingStatus.PUBLISHING, "updated")
        return PublishJob(listing.id, listing.marketplace.value, listing.sku, listing.product.title,
                          listing.listing_price, listing.currency, listing.shipping_cost)


def finish_publish(rt: Runtime, listing_id: int, marketplace_listing_id: str) -> bool:
    """PUBLISHING -> ACTIVE with the marketplace's id (LISTING_UPDATE created); False if no longer publishing."""
    with _publishing(rt, listing_id) as (changes, listing):
        if listing is None:
            return False
        listing.marketplace_listing_id = marketplace_listing_id
        listing.listed_at = utcnow()
        _move(changes, listing, ListingStatus.ACTIVE, "created", marketplaceListingId=marketplace_listing_id,
              price=str(listing.listing_price), currency=listing.currency)
        return True


def fail_publish(rt: Runtime, listing_id: int, reason: str) -> bool:
    """PUBLISHING -> ERROR with ``reason`` (LISTING_UPDATE updated)."""
    with _publishing(rt, listing_id) as (changes, listing):
        if listing is None:
            return False
        listing.error_message = reason[:2000]
        _move(changes, listing, ListingStatus.ERROR, "updated", error=listing.error_message)
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


@task(names.LISTING_PUBLISH)
def publish_listing(task: RakudaTask, /, listing_id: int) -> str:
    rt = task.runtime
    job = begin_publish(rt, listing_id)
    if job is None:
        return "skipped"
    remote_id = call_marketplace(task, lambda: rt.marketplace.create_listing(
        job.marketplace, job.sku, job.title, job.price, job.currency, job.shipping_cost))
    if isinstance(remote_id, Failure):
        fail_publish(rt, listing_id, remote_id.reason)
        return "error"
    finish_publish(rt, listing_id, remote_id)
    return "active"


@task(names.LISTING_END)
def end_listing(task: RakudaTask, /, listing_id: int) -> str:
    rt = task.runtime
    target = ended_listing_target(rt, listing_id)
    if target is None:
        return "nothing to end"
    ended = call_marketplace(task, lambda: rt.marketplace.end_listing(*target))
    if isinstance(ended, Failure):
        record_end_failure(rt, listing_id, ended.reason)
        return "error"
    return "ended"


@dataclass(frozen=True)
class Failure:
    reason: str


def call_marketplace(task: RakudaTask, call: Callable[[], T]) -> T | Failure:
    """``call()``'s result; a TransientError retries the task (with backoff) while retries remain.

    Retried by hand rather than with ``autoretry_for``: once the retries are spent, or on a
    PermanentError, the caller records the Failure's reason on the listing and the task ends
    normally, where autoretry_for would fail the task with the exception.
    """
    try:
        return call()
    except PermanentError as exc:
        return Failure(str(exc))
    except TransientError as exc:
        if task.can_retry():
            task.retry_with_backoff(exc)
        return Failure(f"gave up after {task.request.retries + 1} attempts: {exc}")
