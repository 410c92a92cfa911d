"""Events follow the commit: none for a rollback, none lost when Redis is down at commit."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import select

from shared import task_names
from shared.config import Settings
from shared.models import OutboxEvent, Product, ProductSource
from shared.realtime import RealTimeEvent
from tasks.celery_app import create_celery
from tasks.runtime import Runtime
from tests.pipeline.conftest import published_events
from tests.servers import RedisServer
from tests.waiting import eventually


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


def test_events_of_one_commit_go_out_in_one_publish_many_per_channel(runtime: Runtime, bus_redis) -> None:
    calls: list[tuple[str, int]] = []
    real = runtime.bus.publish_many

    def counting(channel, events):
        events = list(events)
        calls.append((channel, len(events)))
        return real(channel, events)

    runtime.bus.publish_many = counting  # type: ignore[method-assign]
    with runtime.outbox.transaction() as changes:
        for i in range(50):
            product = add_product(changes.session, f"p{i}")
            changes.emit(inventory_event(product.id, False))
        changes.emit(RealTimeEvent.create("LISTING_UPDATE", 1, "deleted", {"status": "ENDED"}))
    assert sorted(calls) == [("rakuda:realtime:inventory", 50), ("rakuda:realtime:listings", 1)]
    assert len(published_events(bus_redis)) == 51


def test_redis_down_at_commit_event_arrives_after_redis_returns(app_settings: Settings) -> None:
    """The change commits while Redis is down; the relay task publishes the event once Redis is back."""
    bus_server = RedisServer().start()
    settings = app_settings.replace(redis_url=bus_server.url, celery_broker_url=app_settings.redis_url)
    rt = Runtime(settings)
    app = create_celery(settings, runtime=rt)
    try:
        rt.bus.redis.ping()
        bus_server.stop()
        with rt.outbox.transaction() as changes:  # no exception: the change is committed, the event kept
            product = add_product(changes.session)
            changes.emit(inventory_event(product.id, False))
        with rt.db.transaction() as session:
            assert session.get(Product, product.id) is not None
            assert session.scalars(select(OutboxEvent.published_at)).one() is None

        bus_server.start()
        reader = redis.Redis.from_url(bus_server.url, decode_responses=True)
        from celery.contrib.testing.worker import start_worker

        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
            app.send_task(task_names.OUTBOX_RELAY)
            events = eventually(lambda: published_events(reader), what="the relayed event")
        assert [e["payload"]["id"] for e in events] == [str(product.id)]
        with rt.db.transaction() as session:
            assert session.scalars(select(OutboxEvent.published_at)).one() is not None
        reader.close()
    finally:
        rt.reset()
        app.close()
        bus_server.stop()
