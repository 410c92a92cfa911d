"""Price sync through a real worker: reprice what moved >1%, history, marketplace push, PRICE_CHANGE."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from shared import task_names
from shared.models import Listing, PriceHistory, PriceSetting
from tests.pipeline.conftest import published_events
from tests.waiting import eventually


def prices(runtime):
    with runtime.db.transaction() as session:
        return {(lst.product_id, lst.marketplace.value): lst.listing_price for lst in session.scalars(select(Listing))}


def history(runtime):
    with runtime.db.transaction() as session:
        return session.scalars(select(PriceHistory).order_by(PriceHistory.id)).all()


def test_price_sync_reprices_moved_listings_records_history_and_emits_price_change(
        runtime, celery_app, worker, catalogue, marketplace, bus_redis, tasks_done):
    (product_id,) = catalogue(1, price_jpy=10000, weight=500)
    # eBay's listing already sits within 1 % of its computed price (122.85): left alone.
    with runtime.db.transaction() as session:
        session.execute(update(Listing).where(Listing.marketplace == "EBAY").values(listing_price=Decimal("122.00")))

    celery_app.send_task(task_names.PRICE_SYNC)
    eventually(lambda: published_events(bus_redis, "PRICE_CHANGE"), what="PRICE_CHANGE")

    assert prices(runtime) == {(product_id, "EBAY"): Decimal("122.00"), (product_id, "JOOM"): Decimal("124.20")}
    (row,) = history(runtime)
    assert (row.old_price, row.new_price, row.currency) == (Decimal("100.00"), Decimal("124.20"), "USD")
    assert marketplace.prices == {f"joom-{product_id}": "124.20"}
    (event,) = published_events(bus_redis, "PRICE_CHANGE")
    assert event["payload"]["action"] == "updated"
    data = event["payload"]["data"]
    assert (data["oldPrice"], data["newPrice"], data["currency"]) == ("100.00", "124.20", "USD")

    celery_app.send_task(task_names.PRICE_SYNC)  # nothing moved since: no second change
    tasks_done()  # the sweep has run, and queued its batches before the next marker
    tasks_done()  # the batches have run
    assert len(history(runtime)) == 1 and len(published_events(bus_redis, "PRICE_CHANGE")) == 1


def test_price_sync_refuses_a_setting_of_100_percent_and_reprices_the_other_marketplace(
        runtime, celery_app, worker, catalogue, marketplace, bus_redis):
    (product_id,) = catalogue(1)
    with runtime.db.transaction() as session:
        session.execute(update(PriceSetting).where(PriceSetting.marketplace == "EBAY")
                        .values(platform_fee_rate=Decimal("0.5"), payment_fee_rate=Decimal("0.3"),
                                ad_rate=Decimal("0.1"), profit_rate=Decimal("0.1")))
    celery_app.send_task(task_names.PRICE_SYNC)
    eventually(lambda: published_events(bus_redis, "PRICE_CHANGE"), what="PRICE_CHANGE")
    assert prices(runtime) == {(product_id, "EBAY"): Decimal("100.00"), (product_id, "JOOM"): Decimal("124.20")}
    assert [e["payload"]["data"]["marketplace"] for e in published_events(bus_redis, "PRICE_CHANGE")] == ["JOOM"]


def test_price_push_failure_is_retried_and_nothing_recorded_until_it_succeeds(
        runtime, celery_app, worker, catalogue, marketplace, bus_redis, tasks_done):
    catalogue(1)
    marketplace.unavailable = True
    celery_app.send_task(task_names.PRICE_SYNC)
    eventually(lambda: len(marketplace.calls("PUT")) == 6, what="3 attempts x 2 listings")
    tasks_done()  # the last attempt has run to its end
    assert history(runtime) == [] and published_events(bus_redis) == []
    assert set(prices(runtime).values()) == {Decimal("100.00")}
