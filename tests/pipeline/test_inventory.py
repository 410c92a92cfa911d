"""Inventory check through a real worker: state changes and the exact events they emit."""

from __future__ import annotations

import time

from sqlalchemy import select

from shared import task_names
from shared.models import Listing, ListingStatus, Product, ProductStatus
from tests.pipeline.conftest import published_events
from tests.waiting import eventually


def products(runtime, ids):
    with runtime.db.transaction() as session:
        return {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(ids)))}


def listing_statuses(runtime, product_id):
    with runtime.db.transaction() as session:
        return {lst.marketplace.value: lst.status for lst in
                session.scalars(select(Listing).where(Listing.product_id == product_id))}


def test_out_of_stock_product_emits_inventory_change_and_ends_its_listings(
        runtime, celery_app, worker, catalogue, supplier, marketplace, bus_redis):
    sold_out, unchanged = catalogue(2)
    item = products(runtime, [sold_out])[sold_out]
    supplier.items[("MERCARI", item.source_item_id)]["available"] = False

    celery_app.send_task(task_names.INVENTORY_SWEEP)
    eventually(lambda: all(p.last_checked_at for p in products(runtime, [sold_out, unchanged]).values()),
             what="both products checked")
    eventually(lambda: len(marketplace.ended) == 2, what="both listings ended on the marketplace")

    after = products(runtime, [sold_out, unchanged])
    assert after[sold_out].is_available is False and after[sold_out].status == ProductStatus.OUT_OF_STOCK
    assert after[unchanged].is_available is True
    assert listing_statuses(runtime, sold_out) == {"EBAY": ListingStatus.ENDED, "JOOM": ListingStatus.ENDED}
    assert listing_statuses(runtime, unchanged) == {"EBAY": ListingStatus.ACTIVE, "JOOM": ListingStatus.ACTIVE}
    assert sorted(marketplace.ended) == sorted([f"ebay-{sold_out}", f"joom-{sold_out}"])

    inventory = published_events(bus_redis, "INVENTORY_CHANGE")
    assert len(inventory) == 1
    assert inventory[0]["payload"]["id"] == str(sold_out) and inventory[0]["payload"]["action"] == "updated"
    data = inventory[0]["payload"]["data"]
    assert (data["isAvailable"], data["previous"]) == (False, True)
    listing_events = published_events(bus_redis, "LISTING_UPDATE")
    assert len(listing_events) == 2
    assert {e["payload"]["action"] for e in listing_events} == {"deleted"}
    assert {e["payload"]["data"]["status"] for e in listing_events} == {"ENDED"}
    assert published_events(bus_redis, "PRICE_CHANGE") == []


def test_purchase_price_change_at_threshold_emits_price_change_below_it_does_not(
        runtime, celery_app, worker, catalogue, supplier, bus_redis):
    at_threshold, below = catalogue(2, listed=False, price_jpy=10000)
    items = products(runtime, [at_threshold, below])
    supplier.items[("MERCARI", items[at_threshold].source_item_id)]["price_jpy"] = 11000  # +10.0 %
    supplier.items[("MERCARI", items[below].source_item_id)]["price_jpy"] = 10999  # +9.99 %

    celery_app.send_task(task_names.INVENTORY_CHECK_BATCH, args=[[at_threshold, below]])
    eventually(lambda: published_events(bus_redis), what="PRICE_CHANGE")

    after = products(runtime, [at_threshold, below])
    assert (after[at_threshold].purchase_price_jpy, after[below].purchase_price_jpy) == (11000, 10999)
    events = published_events(bus_redis)
    assert [e["type"] for e in events] == ["PRICE_CHANGE"]
    data = events[0]["payload"]["data"]
    assert (events[0]["payload"]["id"], data["oldPrice"], data["newPrice"], data["currency"]) == (
        str(at_threshold), 10000, 11000, "JPY")


def test_checking_twice_changes_and_announces_once(runtime, celery_app, worker, catalogue, supplier, bus_redis,
                                                   tasks_done):
    (product_id,) = catalogue(1, listed=False)
    supplier.items[("MERCARI", products(runtime, [product_id])[product_id].source_item_id)]["available"] = False
    for _ in range(3):
        celery_app.send_task(task_names.INVENTORY_CHECK_BATCH, args=[[product_id]])
    eventually(lambda: len(supplier.calls("GET")) == 3, what="three checks")
    tasks_done()  # all three checks have run
    assert len(published_events(bus_redis, "INVENTORY_CHANGE")) == 1


def test_supplier_errors_are_retried_with_backoff_then_succeed(runtime, celery_app, worker, catalogue, supplier,
                                                               bus_redis):
    (product_id,) = catalogue(1, listed=False)
    key = ("MERCARI", products(runtime, [product_id])[product_id].source_item_id)
    supplier.items[key]["available"] = False
    supplier.failures[key] = 2  # two 503s, then the answer (TASK_MAX_RETRIES is 2 in tests)

    celery_app.send_task(task_names.INVENTORY_CHECK_BATCH, args=[[product_id]])
    eventually(lambda: published_events(bus_redis, "INVENTORY_CHANGE"), what="the change after two retries")
    assert len(supplier.calls("GET")) == 3
    assert products(runtime, [product_id])[product_id].is_available is False


def test_hung_supplier_times_out_instead_of_holding_the_worker(runtime, celery_app, worker, catalogue, supplier):
    (product_id,) = catalogue(1, listed=False)
    supplier.delay = 3.0
    runtime.supplier.http.timeout = 0.5  # 3 attempts of 0.5 s, then give up
    started = time.monotonic()
    celery_app.send_task(task_names.INVENTORY_CHECK_BATCH, args=[[product_id]])
    eventually(lambda: len(supplier.calls("GET")) == 3, timeout=20, what="three timed-out attempts")
    supplier.delay = 0.0
    # the worker is free again: a second batch runs to completion
    (other,) = catalogue(1, listed=False)
    celery_app.send_task(task_names.INVENTORY_CHECK_BATCH, args=[[other]])
    eventually(lambda: products(runtime, [other])[other].last_checked_at, timeout=20)
    assert time.monotonic() - started < 20
    assert products(runtime, [product_id])[product_id].last_checked_at is None
