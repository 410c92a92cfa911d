"""An order ends its product's listings elsewhere in its own transaction; a racing second order is flagged."""

from __future__ import annotations

import copy
import threading

from sqlalchemy import select

from shared.models import Listing, ListingStatus, Order, OrderLine, WebhookEvent
from tasks import webhook_processing
from tasks.runtime import Runtime
from tests.pipeline import samples
from tests.pipeline.conftest import published_events
from tests.waiting import eventually

JOOM_SECRET = "joom-test-secret"
EBAY_SECRET = "ebay-test-secret"


def listings_of(runtime: Runtime, product_id: int) -> dict[str, Listing]:
    with runtime.db.transaction() as session:
        rows = session.scalars(select(Listing).where(Listing.product_id == product_id)).all()
        return {row.marketplace.value: row for row in rows}


def joom_order(order_id: str, sku: str) -> dict:
    body = copy.deepcopy(samples.JOOM_ORDER_CREATED)
    body["order"]["id"] = order_id
    body["order"]["items"][0]["sku"] = sku
    return body


def ebay_order(order_id: str, sku: str) -> dict:
    body = copy.deepcopy(samples.EBAY_ORDER_CREATED)
    body["metadata"]["notificationId"] = f"n-{order_id}"
    body["notification"]["data"]["orderId"] = order_id
    body["notification"]["data"]["lineItems"][0]["sku"] = sku
    return body


def post_joom(http, body):
    raw = samples.encode(body)
    return http.post("/api/webhooks/joom", data=raw, headers=samples.joom_headers(raw, JOOM_SECRET))


def post_ebay(http, body):
    raw = samples.encode(body)
    return http.post("/api/webhooks/ebay", data=raw, headers=samples.ebay_headers(raw, EBAY_SECRET))


def test_an_order_sells_its_listing_and_ends_the_other_marketplace_listing(runtime, catalogue, worker, http,
                                                                          bus_redis, marketplace):
    (product_id,) = catalogue(1)
    before = listings_of(runtime, product_id)
    assert post_joom(http, joom_order("JO-1", before["JOOM"].sku)).status_code == 202

    eventually(lambda: marketplace.calls("DELETE"), what="the eBay end call")
    after = listings_of(runtime, product_id)
    assert after["JOOM"].status == ListingStatus.SOLD
    assert (after["EBAY"].status, after["EBAY"].end_reason) == (ListingStatus.ENDED, "sold_elsewhere")
    ((method, path, _body),) = marketplace.calls("DELETE")
    assert path == f"/ebay/listings/{before['EBAY'].marketplace_listing_id}"

    updates = {e["payload"]["id"]: e["payload"] for e in published_events(bus_redis, "LISTING_UPDATE")}
    ended = updates[str(before["EBAY"].id)]
    assert ended["action"] == "deleted"
    assert ended["data"]["status"] == "ENDED" and ended["data"]["reason"] == "sold_elsewhere"
    assert ended["data"]["orderId"] == "JO-1" and ended["data"]["marketplace"] == "EBAY"
    assert updates[str(before["JOOM"].id)]["data"]["status"] == "SOLD"
    (order_event,) = published_events(bus_redis, "ORDER_RECEIVED")
    assert "oversold" not in order_event["payload"]["data"]
    with runtime.db.transaction() as session:
        assert session.scalars(select(Order.oversold)).one() is False


def test_a_second_order_before_the_end_went_through_is_flagged_oversold(runtime, catalogue, worker, http,
                                                                        bus_redis, marketplace):
    (product_id,) = catalogue(1)
    skus = {mp: listing.sku for mp, listing in listings_of(runtime, product_id).items()}
    marketplace.delay = 1.0  # the eBay end call is still under way when the eBay order comes
    assert post_joom(http, joom_order("JO-2", skus["JOOM"])).status_code == 202
    assert post_ebay(http, ebay_order("EB-2", skus["EBAY"])).status_code == 202

    events = eventually(lambda: len(published_events(bus_redis, "ORDER_RECEIVED")) == 2
                      and published_events(bus_redis, "ORDER_RECEIVED"), what="two ORDER_RECEIVED")
    flags = {e["payload"]["data"]["orderId"]: e["payload"]["data"].get("oversold", False) for e in events}
    assert flags == {"JO-2": False, "EB-2": True}
    with runtime.db.transaction() as session:
        stored = dict(session.execute(select(Order.marketplace_order_id, Order.oversold)).all())
    assert stored == {"JO-2": False, "EB-2": True}
    shown = http.get("/api/orders", headers={"X-API-Key": "test-key"}).json
    assert {o["marketplaceOrderId"]: o["oversold"] for o in shown["items"]} == stored


def test_two_orders_racing_for_one_product_flag_exactly_one(runtime, catalogue, http):
    """Both deliveries applied at the same moment on two connections: the product lock decides."""
    for attempt in range(5):
        (product_id,) = catalogue(1)
        skus = {mp: listing.sku for mp, listing in listings_of(runtime, product_id).items()}
        assert post_joom(http, joom_order(f"JO-r{attempt}", skus["JOOM"])).status_code == 202
        assert post_ebay(http, ebay_order(f"EB-r{attempt}", skus["EBAY"])).status_code == 202
        with runtime.db.transaction() as session:
            ids = session.scalars(select(WebhookEvent.id).order_by(WebhookEvent.id.desc()).limit(2)).all()
        start, outcomes, ended = threading.Barrier(2), [], []

        def apply(webhook_event_id: int, start=start, outcomes=outcomes, ended=ended) -> None:
            start.wait()
            outcomes.append(webhook_processing.apply_webhook_event(runtime, webhook_event_id, ended))

        threads = [threading.Thread(target=apply, args=(i,)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert outcomes == ["created", "created"]
        with runtime.db.transaction() as session:
            flagged = session.scalars(select(Order.oversold).join(OrderLine).join(Listing)
                                      .where(Listing.product_id == product_id)).all()
        assert sorted(flagged) == [False, True]
        after = listings_of(runtime, product_id)
        assert sorted(listing.status.value for listing in after.values()) == ["ENDED", "SOLD"]
        assert len(ended) == 1
