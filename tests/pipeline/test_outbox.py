"""Events follow the commit: none for a rollback, none lost when Redis is down at commit."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import select

from shared.models import OutboxEvent, Product, ProductSource
from shared.realtime import RealTimeEvent
from tasks.runtime import Runtime
from tests.pipeline.conftest import published_events, run_relay
from tests.servers import RedisServer


def inventory_event(product_id: int, available: bool) -> RealTimeEvent:
    return RealTimeEvent.create("INVENTORY_CHANGE", product_id, "updated",
                                {"isAvailable": available, "previous": not available})


def add_product(session, item_id: str = "x1") -> Product:
    product = Product(source=ProductSource.MERCARI, source_item_id=item_id, title="t", purchase_price_jpy=1000)
    session.add(product)
    session.flush()
    return product


def test_rolled_back_change_publishes_no_event(runtime: Runtime, bus_redis: redis.Redis) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with runtime.outbox.transaction() as changes:
            product = add_product(changes.session)
            changes.emit(inventory_event(product.id, False))
            raise RuntimeError("boom")
    with runtime.db.transaction() as session:
        assert session.scalars(select(Product)).all() == []
        assert session.scalars(select(OutboxEvent)).all() == []
    assert published_events(bus_redis) == []


def test_committed_change_is_published_once_and_marked_sent(runtime: Runtime, bus_redis: redis.Redis) -> None:
    with runtime.outbox.transaction() as changes:
        product = add_product(changes.session)
        changes.emit(inventory_event(product.id, False))
    events = published_events(bus_redis)
    assert [e["type"] for e in events] == ["INVENTORY_CHANGE"]
    assert events[0]["payload"]["data"]["isAvailable"] is False
    with runtime.db.transaction() as session:
        row = session.scalars(select(OutboxEvent)).one()
        assert row.published_at is not None and row.bus_id == events[0]["id"]
        assert events[0]["payload"]["data"]["outboxId"] == row.id
    assert runtime.outbox.relay() == 0  # nothing left: the relay does not publish it again


def test_events_of_one_commit_go_out_in_one_publish_many_per_channel(runtime: Runtime, bus_redis,
                                                                     publish_many_calls) -> None:
    with runtime.outbox.transaction() as changes:
        for i in range(50):
            product = add_product(changes.session, f"p{i}")
            changes.emit(inventory_event(product.id, False))
        changes.emit(RealTimeEvent.create("LISTING_UPDATE", 1, "deleted", {"status": "ENDED"}))
    assert sorted(publish_many_calls) == [("rakuda:realtime:inventory", 50), ("rakuda:realtime:listings", 1)]
    assert len(published_events(bus_redis)) == 51


def test_redis_down_at_commit_event_arrives_after_redis_returns(stoppable_bus, private_redis: RedisServer) -> None:
    """The change commits while Redis is down; the relay task publishes the event once Redis is back."""
    rt, app = stoppable_bus
    private_redis.stop()
    with rt.outbox.transaction() as changes:  # no exception: the change is committed, the event kept
        product = add_product(changes.session)
        changes.emit(inventory_event(product.id, False))
    with rt.db.transaction() as session:
        assert session.get(Product, product.id) is not None
        assert session.scalars(select(OutboxEvent.published_at)).one() is None

    private_redis.start()
    reader = redis.Redis.from_url(private_redis.url, decode_responses=True)
    events = run_relay(app, lambda: published_events(reader))
    assert [e["payload"]["id"] for e in events] == [str(product.id)]
    with rt.db.transaction() as session:
        assert session.scalars(select(OutboxEvent.published_at)).one() is not None
    reader.close()
