"""A price sync batch written set-wise keeps the outbox's promises, on PostgreSQL with a real worker.

One batch: one publish_many for its PRICE_CHANGE events, each event carrying the old and new
price of the row it describes and the id of its outbox row; a batch whose writes fail commits
and publishes nothing; a batch committed while Redis is down is published by the relay, exactly
its committed rows and nothing else.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import redis
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from shared import task_names
from shared.models import Listing, OutboxEvent, OutboxUnsent, PriceHistory
from shared.realtime import RealTimeEvent, RealTimeEventType
from tasks import price_sync
from tasks.runtime import Runtime
from tests.pipeline.conftest import published_events, run_relay
from tests.waiting import eventually

# The catalogue's products (10,000 JPY, 500 g) at rate 0.0067 under its eBay and Joom settings.
COMPUTED = {"EBAY": "122.85", "JOOM": "124.20"}


def listing_ids(rt: Runtime) -> list[int]:
    with rt.db.transaction() as session:
        return list(session.scalars(select(Listing.id).order_by(Listing.id)))


def outbox_rows(rt: Runtime) -> dict[int, tuple[str, bool]]:
    """Each outbox row's JSON and whether it was published (marked sent)."""
    with rt.db.transaction() as session:
        unsent = set(session.scalars(select(OutboxUnsent.id)))
        rows = session.execute(select(OutboxEvent.id, OutboxEvent.event_json))
        return {i: (body, i not in unsent) for i, body in rows}


def test_a_batch_goes_out_in_one_publish_many_with_each_rows_old_and_new_price(
        runtime, celery_app, worker, catalogue, bus_redis, publish_many_calls):
    catalogue(30)
    celery_app.send_task(task_names.PRICE_SYNC_BATCH, args=[listing_ids(runtime)])
    events = eventually(lambda: len(published_events(bus_redis, "PRICE_CHANGE")) == 60
                      and published_events(bus_redis, "PRICE_CHANGE"), what="60 PRICE_CHANGE events")

    assert publish_many_calls == [("rakuda:realtime:pricing", 60)]
    with runtime.db.transaction() as session:
        listings = {lst.id: lst for lst in session.scalars(select(Listing))}
        history = {h.listing_id: h for h in session.scalars(select(PriceHistory))}
    rows = outbox_rows(runtime)
    assert len(rows) == 60 and len(history) == 60
    for event in events:
        data = event["payload"]["data"]
        listing = listings[data["listingId"]]
        assert event["payload"]["id"] == str(listing.id)
        assert (data["oldPrice"], data["newPrice"]) == ("100.00", COMPUTED[listing.marketplace.value])
        assert str(listing.listing_price) == data["newPrice"] == str(history[listing.id].new_price)
        assert history[listing.id].old_price == Decimal("100.00")
        body, sent = rows[data["outboxId"]]
        assert sent
        assert json.loads(body) == {k: v for k, v in event.items() if k != "id"}  # published as stored
        # PostgreSQL built the JSON: it is what the event schema makes of the same event, byte for byte
        made = RealTimeEvent.create(RealTimeEventType.PRICE_CHANGE, listing.id, "updated", {
            "oldPrice": "100.00", "newPrice": str(listing.listing_price), "currency": listing.currency,
            "listingId": listing.id, "marketplace": listing.marketplace.value, "kind": "listing",
            "outboxId": data["outboxId"]}, event["timestamp"])
        assert RealTimeEvent.parse({k: v for k, v in event.items() if k != "id"}) == made
        assert body == made.to_json()


def test_a_batch_whose_history_insert_fails_commits_and_publishes_nothing(runtime, catalogue, bus_redis):
    catalogue(5)
    with runtime.db.engine.begin() as conn:  # PostgreSQL itself refuses the batch's history rows
        conn.execute(text("CREATE FUNCTION refuse_history() RETURNS trigger AS "
                          "$$ BEGIN RAISE EXCEPTION 'history refused'; END $$ LANGUAGE plpgsql"))
        conn.execute(text("CREATE TRIGGER refuse_history BEFORE INSERT ON price_history "
                          "FOR EACH STATEMENT EXECUTE FUNCTION refuse_history()"))
    with pytest.raises(DBAPIError, match="history refused"):
        price_sync.sync_prices(runtime, listing_ids(runtime))
    with runtime.db.transaction() as session:
        assert set(session.scalars(select(Listing.listing_price))) == {Decimal("100.00")}
    assert outbox_rows(runtime) == {}
    assert published_events(bus_redis) == []


def test_a_batch_committed_while_redis_is_down_is_relayed_exactly_once(stoppable_bus, private_redis, catalogue):
    catalogue(10)
    rt, app = stoppable_bus
    private_redis.stop()
    result = price_sync.sync_prices(rt, listing_ids(rt))  # commits; the publish fails after it
    assert result.changed == 20
    rows = outbox_rows(rt)
    assert len(rows) == 20 and not any(sent for _body, sent in rows.values())

    private_redis.start()
    reader = redis.Redis.from_url(private_redis.url, decode_responses=True)
    run_relay(app, lambda: all(sent for _body, sent in outbox_rows(rt).values()))
    events = published_events(reader)
    assert sorted(e["payload"]["data"]["outboxId"] for e in events) == sorted(rows)
    for event in events:
        body, sent = outbox_rows(rt)[event["payload"]["data"]["outboxId"]]
        assert sent and json.loads(body) == {k: v for k, v in event.items() if k != "id"}
    assert rt.outbox.relay() == 0
    reader.close()
