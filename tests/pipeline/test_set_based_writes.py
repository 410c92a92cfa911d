"""The one-statement writes of the price sync and the outbox, on PostgreSQL and on the SQLite fallback."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from shared.database import Database
from shared.models import Listing, ListingStatus, Marketplace, OutboxEvent, Product, ProductSource, utcnow
from tasks.outbox_rows import mark_sent
from tasks.price_sync import Reprice, write_prices
from tasks.schema import upgrade


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("migrated").database_url
    else:
        url = f"sqlite:///{tmp_path / 'rakuda.db'}"
        upgrade(url)
    db = Database()
    db.initialize(url)
    yield db
    db.dispose()


def test_prices_and_sent_marks_are_written_for_every_row_and_only_those(database):
    with database.transaction() as session:
        product = Product(source=ProductSource.MERCARI, source_item_id="m1", title="t", purchase_price_jpy=1000)
        session.add(product)
        session.flush()
        listings = [Listing(product_id=product.id, marketplace=mp, sku=f"s-{mp.value}", status=ListingStatus.ACTIVE,
                            listing_price=Decimal("1.00")) for mp in Marketplace]
        rows = [OutboxEvent(channel="c", event_json="{}") for _ in range(3)]
        session.add_all([*listings, *rows])
        session.flush()
        ebay, joom = listings
        write_prices(session, [Reprice(ebay.id, "EBAY", None, Decimal("1.00"), Decimal("12.34"), Decimal("5.00"),
                                       "USD")])
        mark_sent(session, database.is_postgresql, [rows[0].id, rows[2].id], ["1-0", None], utcnow())
        ids = [row.id for row in rows]
    with database.transaction() as session:
        prices = dict(session.execute(select(Listing.sku, Listing.listing_price)).all())
        shipping = session.scalar(select(Listing.shipping_cost).where(Listing.sku == "s-EBAY"))
        marks = session.execute(select(OutboxEvent.id, OutboxEvent.bus_id, OutboxEvent.published_at)
                                .order_by(OutboxEvent.id)).all()
    assert prices == {"s-EBAY": Decimal("12.34"), "s-JOOM": Decimal("1.00")} and shipping == Decimal("5.00")
    assert [(i, bus_id, sent is not None) for i, bus_id, sent in marks] == [
        (ids[0], "1-0", True), (ids[1], None, False), (ids[2], None, True)]


def test_stored_events_carry_their_row_id_and_are_stored_as_they_will_be_published(database):
    from shared.realtime import RealTimeEvent
    from tasks.outbox_rows import store

    # strings that COPY's text format would take apart unescaped: backslashes, tab and newline escapes
    events = [RealTimeEvent.create("PRICE_CHANGE", i, "updated", {"newPrice": f"{i}.00", "note": note})
              for i, note in ((1, 'a\\b "q"'), (2, "tab\there\nnew\\n"), (3, "é\u2028\x01\\\\"))]
    with database.transaction() as session:
        stored = store(session, database.is_postgresql, events)
    with database.transaction() as session:
        rows = dict(session.execute(select(OutboxEvent.id, OutboxEvent.event_json)).all())
    assert sorted(rows) == sorted(s.id for s in stored) and len(set(rows)) == 3
    for row, event in zip(stored, events, strict=True):
        assert rows[row.id] == row.event.json and row.channel == "rakuda:realtime:pricing"
        assert RealTimeEvent.parse(rows[row.id]).payload.data == {**event.payload.data, "outboxId": row.id}
