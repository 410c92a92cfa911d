"""Events follow the commit: none for a rollback, none lost when Redis is down at commit."""

from __future__ import annotations

import threading

import pytest
import redis
from sqlalchemy import select

from shared.exceptions import PublishError
from shared.models import OutboxEvent, OutboxUnsent, Product, ProductSource
from shared.realtime import RealTimeEvent
from tasks.outbox_rows import store, take_oldest
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
        assert events[0]["payload"]["data"]["outboxId"] == row.id
        assert session.scalars(select(OutboxUnsent.id)).all() == []  # marked sent
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
        assert session.scalars(select(OutboxUnsent.id)).all() == session.scalars(select(OutboxEvent.id)).all()

    private_redis.start()
    reader = redis.Redis.from_url(private_redis.url, decode_responses=True)
    events = run_relay(app, lambda: published_events(reader))
    assert [e["payload"]["id"] for e in events] == [str(product.id)]
    with rt.db.transaction() as session:
        assert session.scalars(select(OutboxUnsent.id)).all() == []
    reader.close()


def test_rows_a_relay_holds_are_not_published_again_by_the_committing_publisher(runtime: Runtime,
                                                                               bus_redis: redis.Redis) -> None:
    """A relay that took a just-committed row first publishes it; the post-commit publisher waits
    for the relay's transaction and then finds nothing left of it to publish."""
    with runtime.db.transaction() as session:
        stored = store(session, True, [inventory_event(1, False), inventory_event(2, True)])
    relay_session = runtime.db.new_session()
    relay_session.begin()
    held = take_oldest(relay_session, True, 1)  # the relay holds the older row, not yet committed
    assert [row.id for row in held] == [stored[0].id]
    result: list[int] = []
    publisher = threading.Thread(target=lambda: result.append(runtime.outbox.publish_stored(stored)))
    publisher.start()
    publisher.join(0.5)
    assert publisher.is_alive()  # waiting for the relay's row
    runtime.bus.publish_many("rakuda:realtime:inventory", [held[0].event])
    relay_session.commit()
    relay_session.close()
    publisher.join(10)
    assert result == [1]  # the other row only
    assert sorted(e["payload"]["data"]["outboxId"] for e in published_events(bus_redis)) == [s.id for s in stored]
    assert runtime.outbox.relay() == 0


def test_a_publish_refused_on_one_channel_leaves_that_channels_rows_unsent_and_the_others_sent(
        runtime: Runtime, bus_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    real = runtime.bus.publish_many

    def refusing_listings(channel, events):
        if channel == "rakuda:realtime:listings":
            raise PublishError(channel, redis.ConnectionError("refused"))
        return real(channel, events)

    monkeypatch.setattr(runtime.bus, "publish_many", refusing_listings)
    with runtime.outbox.transaction() as changes:  # the change commits; the listings event stays unsent
        changes.emit(inventory_event(1, False), RealTimeEvent.create("LISTING_UPDATE", 7, "updated", {}))
    with runtime.db.transaction() as session:
        unsent = session.scalars(select(OutboxEvent.channel).join(OutboxUnsent, OutboxUnsent.id == OutboxEvent.id))
        assert list(unsent) == ["rakuda:realtime:listings"]
    assert [e["type"] for e in published_events(bus_redis)] == ["INVENTORY_CHANGE"]
    monkeypatch.setattr(runtime.bus, "publish_many", real)
    assert runtime.outbox.relay() == 1
    assert [e["type"] for e in published_events(bus_redis)] == ["INVENTORY_CHANGE", "LISTING_UPDATE"]
