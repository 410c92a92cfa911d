"""Publishing a listing through a real worker: PUBLISHING -> ACTIVE, or ERROR with the reason."""

from __future__ import annotations

from decimal import Decimal

from shared import task_names
from shared.models import Listing, ListingStatus, Marketplace
from tests.pipeline.conftest import published_events
from tests.waiting import eventually


def draft(runtime, catalogue) -> int:
    (product_id,) = catalogue(1, listed=False)
    with runtime.db.transaction() as session:
        listing = Listing(product_id=product_id, marketplace=Marketplace.JOOM, sku=f"ALS-d{product_id:07d}",
                          listing_price=Decimal("124.20"), shipping_cost=Decimal("10.00"),
                          status=ListingStatus.PENDING_PUBLISH)
        session.add(listing)
        session.flush()
        return listing.id


def state(runtime, listing_id):
    with runtime.db.transaction() as session:
        return session.get(Listing, listing_id)


def listing_events(bus_redis):
    return [(e["payload"]["action"], e["payload"]["data"]["status"])
            for e in published_events(bus_redis, "LISTING_UPDATE")]


def test_publish_moves_listing_to_active_with_events_for_each_status(runtime, celery_app, worker, catalogue,
                                                                     marketplace, bus_redis):
    listing_id = draft(runtime, catalogue)
    celery_app.send_task(task_names.LISTING_PUBLISH, args=[listing_id])
    eventually(lambda: len(listing_events(bus_redis)) == 2, what="PUBLISHING and ACTIVE events")

    listing = state(runtime, listing_id)
    assert listing.marketplace_listing_id == "joom-1" and listing.listed_at is not None
    assert marketplace.calls("POST")[0][2] == {"sku": listing.sku, "title": "Item 0", "price": "124.20",
                                               "currency": "USD", "shipping_cost": "10.00"}
    assert listing_events(bus_redis) == [("updated", "PUBLISHING"), ("created", "ACTIVE")]


def test_refused_listing_goes_to_error_with_the_marketplace_reason(runtime, celery_app, worker, catalogue,
                                                                   marketplace, bus_redis):
    listing_id = draft(runtime, catalogue)
    marketplace.refuse[state(runtime, listing_id).sku] = "category requires brand"
    celery_app.send_task(task_names.LISTING_PUBLISH, args=[listing_id])
    eventually(lambda: len(listing_events(bus_redis)) == 2, what="PUBLISHING and ERROR events")

    assert "category requires brand" in state(runtime, listing_id).error_message
    assert len(marketplace.calls("POST")) == 1  # a refusal is not retried
    assert listing_events(bus_redis) == [("updated", "PUBLISHING"), ("updated", "ERROR")]


def test_marketplace_down_is_retried_then_error_with_the_reason(runtime, celery_app, worker, catalogue,
                                                                marketplace, bus_redis):
    listing_id = draft(runtime, catalogue)
    marketplace.unavailable = True
    celery_app.send_task(task_names.LISTING_PUBLISH, args=[listing_id])
    eventually(lambda: len(listing_events(bus_redis)) == 2, what="PUBLISHING and ERROR events after retries")

    assert len(marketplace.calls("POST")) == 3  # first try + TASK_MAX_RETRIES (2)
    assert "gave up after 3 attempts" in state(runtime, listing_id).error_message
    assert listing_events(bus_redis) == [("updated", "PUBLISHING"), ("updated", "ERROR")]


def test_publishing_an_active_listing_again_changes_nothing(runtime, celery_app, worker, catalogue, marketplace,
                                                           bus_redis, tasks_done):
    listing_id = draft(runtime, catalogue)
    celery_app.send_task(task_names.LISTING_PUBLISH, args=[listing_id])
    eventually(lambda: state(runtime, listing_id).status == ListingStatus.ACTIVE)
    celery_app.send_task(task_names.LISTING_PUBLISH, args=[listing_id])
    tasks_done()  # the second publish has run
    assert len(marketplace.calls("POST")) == 1
    assert listing_events(bus_redis) == [("updated", "PUBLISHING"), ("created", "ACTIVE")]
