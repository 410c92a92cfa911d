"""The one-statement writes of the price sync and the outbox, on PostgreSQL and on the SQLite fallback."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from shared.database import Database
from shared.models import Listing, ListingStatus, Marketplace, OutboxEvent, OutboxUnsent, Product, ProductSource
from shared.realtime import RealTimeEvent
from tasks.outbox_rows import put_back, store, take_oldest, take_unsent
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


def test_prices_are_written_for_every_row_and_only_those(database):
    with database.transaction() as session:
        product = Product(source=ProductSource.MERCARI, source_item_id="m1", title="t", purchase_price_jpy=1000)
        session.add(product)
        session.flush()
        listings = [Listing(product_id=product.id, marketplace=mp, sku=f"s-{mp.value}", status=ListingStatus.ACTIVE,
                            listing_price=Decimal("1.00")) for mp in Marketplace]
        session.add_all(listings)
        session.flush()
        ebay, joom = listings
        write_prices(session, [Reprice(ebay.id, "EBAY", None, Decimal("1.00"), Decimal("12.34"), Decimal("5.00"),
                                       "USD")])
    with database.transaction() as session:
        prices = dict(session.execute(select(Listing.sku, Listing.listing_price)).all())
        shipping = session.scalar(select(Listing.shipping_cost).where(Listing.sku == "s-EBAY"))
    assert prices == {"s-EBAY": Decimal("12.34"), "s-JOOM": Decimal("1.00")} and shipping == Decimal("5.00")


def test_every_row_written_is_unsent_until_taken_and_a_rollback_or_put_back_makes_it_unsent_again(database):
    """However a row is written (ORM, or ``store``: COPY on PostgreSQL), the trigger marks it unsent;
    taking rows marks them sent in the taker's transaction, oldest first, or the ones asked for."""
    with database.transaction() as session:
        orm_rows = [OutboxEvent(channel="rakuda:realtime:listings",
                                event_json=RealTimeEvent.create("LISTING_UPDATE", i, "updated").to_json())
                    for i in range(2)]
        session.add_all(orm_rows)
        session.flush()
        stored = store(session, database.is_postgresql, [RealTimeEvent.create("PRICE_CHANGE", i, "updated")
                                                         for i in range(3)])
    ids = [row.id for row in orm_rows] + [row.id for row in stored]
    assert unsent(database) == ids
    with database.transaction() as session:  # rolled back: still unsent
        assert [row.id for row in take_oldest(session, database.is_postgresql, 2)] == ids[:2]
        session.rollback()
    assert unsent(database) == ids
    with database.transaction() as session:
        assert take_unsent(session, database.is_postgresql, [ids[4], ids[2], 10**9]) == {ids[2], ids[4]}
        put_back(session, [ids[4]])
    assert unsent(database) == [ids[0], ids[1], ids[3], ids[4]]
    with database.transaction() as session:  # the oldest, read back as stored, in id order
        taken = take_oldest(session, database.is_postgresql, 10)
        assert [row.id for row in taken] == [ids[0], ids[1], ids[3], ids[4]]
        assert [row.event.json for row in taken[2:]] == [stored[1].event.json, stored[2].event.json]
        assert take_unsent(session, database.is_postgresql, ids) == set()
    assert unsent(database) == []


def unsent(database: Database) -> list[int]:
    with database.transaction() as session:
        return list(session.scalars(select(OutboxUnsent.id).order_by(OutboxUnsent.id)))


def test_stored_events_carry_their_row_id_and_are_stored_as_they_will_be_published(database):
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


def test_pruning_deletes_published_rows_older_than_the_cutoff_and_keeps_unsent_ones(database):
    from datetime import timedelta

    from shared.models import utcnow
    from tasks.outbox import Outbox

    old = utcnow() - timedelta(days=2)
    with database.transaction() as session:
        rows = [OutboxEvent(channel="rakuda:realtime:listings", created_at=created,
                            event_json=RealTimeEvent.create("LISTING_UPDATE", i, "updated").to_json())
                for i, created in enumerate((old, old, utcnow()))]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
        take_unsent(session, database.is_postgresql, [ids[0], ids[2]])  # published: the first old one, the new one
    assert Outbox(database, bus=None).prune_sent() == 1  # type: ignore[arg-type]
    with database.transaction() as session:
        assert list(session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id))) == ids[1:]
    assert unsent(database) == [ids[1]]
