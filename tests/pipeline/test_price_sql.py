"""The price sync's SQL on PostgreSQL gives what the Python formula and event schema give.

The prices PostgreSQL computes equal ``tasks.pricing``'s for any fees, rate, purchase price,
weight and old price within the columns' types (a hypothesis property, and the worked
examples); the event JSON it builds is byte for byte what ``RealTimeEvent.to_json`` makes of
the same event, and parses back to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.database import Database
from shared.models import (
    Listing,
    ListingStatus,
    Marketplace,
    OutboxEvent,
    PriceHistory,
    Product,
    ProductSource,
    utcnow,
)
from shared.realtime import RealTimeEvent, RealTimeEventType, utc_now_iso
from tasks.price_sql import plan_rows, record_rows
from tasks.pricing import Fees, listing_price, moved_enough, shipping_usd
from tests.pipeline.test_pricing_formula import WORKED

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def db(migrated) -> Iterator[Database]:
    database = Database()
    database.initialize(migrated.database_url)
    yield database
    database.dispose()


def add_listings(session: Session, rows: list[tuple[str, int, int, D | None]], currency: str = "USD") -> list[int]:
    """(marketplace, purchase JPY, grams, old price) -> ACTIVE listing ids, one product each."""
    ids = []
    for n, (marketplace, jpy, grams, old) in enumerate(rows):
        product = Product(source=ProductSource.MERCARI, source_item_id=f"p{n}", title="t",
                          purchase_price_jpy=jpy, weight_grams=grams)
        session.add(product)
        session.flush()
        listing = Listing(product_id=product.id, marketplace=Marketplace(marketplace), sku=f"s{n}",
                          listing_price=old, currency=currency, status=ListingStatus.ACTIVE)
        session.add(listing)
        session.flush()
        ids.append(listing.id)
    return ids


def python_plan(fees: dict[str, Fees], rate: D, row: tuple[str, int, int, D | None]) -> tuple[D, D, bool]:
    marketplace, jpy, grams, old = row
    shipping = shipping_usd(marketplace, grams, fees[marketplace])
    price = listing_price(jpy, rate, shipping, fees[marketplace])
    return price, shipping, moved_enough(old, price)


def assert_sql_plans_like_python(db: Database, fees: dict[str, Fees], rate: D,
                                 rows: list[tuple[str, int, int, D | None]]) -> None:
    session = db.new_session()
    try:
        with session.begin():
            ids = add_listings(session, rows)
            planned = {p.id: p for p in plan_rows(session, ids, rate, fees.values())}
            session.rollback()
    finally:
        session.close()
    assert sorted(planned) == sorted(ids)
    for listing_id, row in zip(ids, rows, strict=True):
        got = planned[listing_id]
        assert got.priced
        assert (got.new_price, got.shipping, got.moved) == python_plan(fees, rate, row), row
        assert got.new_price is not None and got.new_price.as_tuple().exponent == -2  # "122.85", never "122.850"


fee_rate = st.decimals(min_value=0, max_value=D("0.2250"), places=4)
money = st.decimals(min_value=0, max_value=D("999.99"), places=2)
fees_strategy = st.tuples(fee_rate, fee_rate, fee_rate, fee_rate, money)
old_price = st.none() | st.decimals(min_value=0, max_value=D("99999.99"), places=2)
rows_strategy = st.lists(st.tuples(st.sampled_from(["EBAY", "JOOM"]), st.integers(0, 10_000_000),
                                   st.integers(0, 100_000), old_price), min_size=1, max_size=12)


@PROPERTY
@given(ebay=fees_strategy, joom=fees_strategy,
       rate=st.decimals(min_value=D("0.00000001"), max_value=D("1"), places=8), rows=rows_strategy)
@example(ebay=(D("0.1325"), D("0.03"), D("0.02"), D("0.15"), D("15.00")),
         joom=(D("0.15"), D("0.05"), D("0.05"), D("0"), D("0")), rate=D("0.01"),
         rows=[("JOOM", 1000, 0, D("20.00")), ("JOOM", 1000, 0, D("19.80")), ("EBAY", 1, 0, None)])
def test_postgresql_prices_every_listing_as_the_python_formula_does(db, ebay, joom, rate, rows):
    fees = {"EBAY": Fees("EBAY", *ebay), "JOOM": Fees("JOOM", *joom)}
    assert_sql_plans_like_python(db, fees, rate, rows)


@pytest.mark.parametrize(("fees", "jpy", "rate", "grams", "expected"), WORKED)
def test_postgresql_gives_the_worked_examples(db, fees, jpy, rate, grams, expected):
    other = Fees("EBAY" if fees.marketplace == "JOOM" else "JOOM", D("0.1"), D("0"), D("0"), D("0"))
    assert_sql_plans_like_python(db, {fees.marketplace: fees, other.marketplace: other}, rate,
                                 [(fees.marketplace, jpy, grams, D("1.00"))])
    assert python_plan({fees.marketplace: fees}, rate, (fees.marketplace, jpy, grams, None))[0] == expected


def test_a_marketplace_without_usable_fees_is_not_priced(db):
    session = db.new_session()
    with session.begin():
        ids = add_listings(session, [("EBAY", 1000, 10, D("5.00")), ("JOOM", 1000, 10, D("5.00"))])
        planned = {p.marketplace: p for p in plan_rows(session, ids, D("0.0067"),
                                                       [Fees("EBAY", D("0.1"), D("0"), D("0"), D("0"))])}
        session.rollback()
    session.close()
    assert planned["EBAY"].priced and planned["EBAY"].new_price is not None
    assert not planned["JOOM"].priced and planned["JOOM"].new_price is None


def python_event(listing_id: int, marketplace: str, old: D | None, new: D, currency: str,
                 timestamp: str) -> RealTimeEvent:
    """The PRICE_CHANGE the Python side makes for a repriced listing (as the SQLite path does)."""
    return RealTimeEvent.create(RealTimeEventType.PRICE_CHANGE, listing_id, "updated", {
        "oldPrice": str(old) if old is not None else None, "newPrice": str(new), "currency": currency,
        "listingId": listing_id, "marketplace": marketplace, "kind": "listing"}, timestamp)


@pytest.mark.parametrize("currency", ["USD", 'é"\\', "\n\t\x01"])
def test_postgresql_builds_each_event_json_exactly_as_the_event_schema_encodes_it(db, currency):
    timestamp = utc_now_iso()
    session = db.new_session()
    with session.begin():
        rows = [("EBAY", 1000, 10, D("5.00")), ("JOOM", 2000, 20, None), ("EBAY", 3000, 30, D("0.00"))]
        ids = add_listings(session, rows, currency)
        prices = [(i, D("12.30") + n, D("4.05")) for n, i in enumerate(ids)]
        stored = record_rows(session, prices, utcnow(), timestamp)
    with session.begin():
        bodies = dict(session.execute(select(OutboxEvent.id, OutboxEvent.event_json)).all())
        history = {h.listing_id: h for h in session.scalars(select(PriceHistory))}
        listings = {lst.id: lst for lst in session.scalars(select(Listing))}
    session.close()
    assert [s.id for s in stored] == sorted(bodies) and len(stored) == 3
    for row, (listing_id, new, shipping) in zip(stored, prices, strict=True):
        old = rows[ids.index(listing_id)][3]
        expected = python_event(listing_id, rows[ids.index(listing_id)][0], old, new, currency, timestamp)
        assert row.event.json == bodies[row.id] == expected.to_json({"outboxId": row.id})
        parsed = RealTimeEvent.parse(row.event.json)
        assert parsed == RealTimeEvent.create(expected.type, listing_id, "updated",
                                              {**(expected.payload.data or {}), "outboxId": row.id}, timestamp)
        assert row.event.type == "PRICE_CHANGE" and row.channel == "rakuda:realtime:pricing"
        assert (listings[listing_id].listing_price, listings[listing_id].shipping_cost) == (new, shipping)
        assert (history[listing_id].old_price, history[listing_id].new_price) == (old, new)


def test_a_price_already_recorded_is_neither_written_again_nor_announced(db):
    session = db.new_session()
    with session.begin():
        ids = add_listings(session, [("EBAY", 1000, 10, D("5.00"))])
    for expected in (1, 0):
        with session.begin():
            assert len(record_rows(session, [(ids[0], D("6.00"), D("1.00"))], utcnow(), utc_now_iso())) == expected
    with session.begin():
        assert session.scalar(select(PriceHistory.new_price)) == D("6.00")
        assert len(session.scalars(select(OutboxEvent.id)).all()) == 1
    session.close()
