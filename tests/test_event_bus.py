"""The event bus against a real Redis: what publish writes, who receives it, what it refuses."""

from __future__ import annotations

import json
import logging
import math
import queue
import time
import uuid

import pytest
import redis

from shared.config import Settings
from shared.constants import EVENT_CHANNELS, HISTORY_STREAM, Channel
from shared.event_bus import PUBLISH_CHUNK, EventBus
from shared.exceptions import (
    BusNotInitializedError,
    ChannelMismatchError,
    InvalidEventError,
    PublishError,
    UnknownChannelError,
)
from shared.realtime import EventPayload, RealTimeEvent
from tests.servers import RedisServer, free_port
from tests.waiting import eventually

ORDERS = EVENT_CHANNELS["ORDERS"]
INVENTORY = EVENT_CHANNELS["INVENTORY"]


def unique(prefix: str = "t") -> str:
    """A payload id no other test (pub/sub channels are shared by every database) will use."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def order(payload_id: str, **data: object) -> RealTimeEvent:
    return RealTimeEvent.create("ORDER_RECEIVED", payload_id, "created", dict(data) or None)


def stock(payload_id: str) -> RealTimeEvent:
    return RealTimeEvent.create("INVENTORY_CHANGE", payload_id, "updated", {"quantity": 3})


def wait_for_subscribers(client: redis.Redis, channel: str, baseline: int, timeout: float = 5.0) -> None:
    """Until Redis has registered one more subscriber of ``channel`` than ``baseline``."""
    eventually(lambda: dict(client.pubsub_numsub(channel))[channel] > baseline, timeout, interval=0.02,
               what=f"a new subscriber on {channel}")


def subscribe_and_wait(bus: EventBus, client: redis.Redis, channel: str) -> queue.Queue:
    """Subscribe through the bus; returns the queue its handler fills, once Redis has the subscription."""
    received: queue.Queue = queue.Queue()
    baseline = dict(client.pubsub_numsub(channel))[channel]
    bus.subscribe(channel, received.put)
    wait_for_subscribers(client, channel, baseline)
    return received


def drain_until(received: queue.Queue, payload_id: str, timeout: float = 10.0) -> list[RealTimeEvent]:
    """Everything the handler got until the event with ``payload_id`` (inclusive)."""
    got: list[RealTimeEvent] = []
    deadline = time.time() + timeout
    while True:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise TimeoutError(f"event {payload_id} not received within {timeout}s; got {got}")
        try:
            event = received.get(timeout=remaining)
        except queue.Empty:
            continue
        got.append(event)
        if event.payload.id == payload_id:
            return got


# --- publishing ---


def test_publish_returns_the_id_of_the_history_entry(bus: EventBus, redis_client: redis.Redis):
    event = order(unique(), total=1200)

    bus_id = bus.publish(ORDERS, event)

    entries = redis_client.xrange(HISTORY_STREAM)
    assert [entry_id for entry_id, _fields in entries] == [bus_id]
    fields = entries[0][1]
    assert fields["t"] == "ORDER_RECEIVED"
    stored = json.loads(fields["e"])
    assert stored["payload"] == {"id": event.payload.id, "action": "created", "data": {"total": 1200}}
    assert stored["timestamp"] == event.timestamp


def test_publish_accepts_the_short_channel_name_and_a_plain_dict(bus: EventBus, redis_client: redis.Redis):
    payload_id = unique()
    bus_id = bus.publish("orders", {"type": "ORDER_RECEIVED", "payload": {"id": payload_id, "action": "updated"}})

    [(entry_id, fields)] = redis_client.xrange(HISTORY_STREAM)
    assert entry_id == bus_id
    assert json.loads(fields["e"])["payload"] == {"id": payload_id, "action": "updated"}


def test_subscriber_receives_each_event_with_its_bus_id(bus: EventBus, redis_client: redis.Redis):
    received = subscribe_and_wait(bus, redis_client, ORDERS)
    first, second = order(unique()), order(unique(), total=5)

    first_id = bus.publish(ORDERS, first)
    second_id = bus.publish(ORDERS, second)

    ours = {first.payload.id, second.payload.id}
    got = [e for e in drain_until(received, second.payload.id) if e.payload.id in ours]
    assert [(e.id, e.payload.id) for e in got] == [(first_id, first.payload.id), (second_id, second.payload.id)]
    assert got[1].payload.data == {"total": 5}
    assert got[1].timestamp == second.timestamp


def test_orders_subscriber_never_sees_inventory_events(bus: EventBus, redis_client: redis.Redis):
    orders = subscribe_and_wait(bus, redis_client, ORDERS)
    inventory = subscribe_and_wait(bus, redis_client, INVENTORY)
    stock_ids = [unique("stock") for _ in range(3)]
    order_id = unique("order")

    for payload_id in stock_ids:
        bus.publish(INVENTORY, stock(payload_id))
    bus.publish(ORDERS, order(order_id))

    # The inventory events did go out (their subscriber has them all) ...
    seen_by_inventory = {e.payload.id for e in drain_until(inventory, stock_ids[-1])}
    assert set(stock_ids) <= seen_by_inventory
    # ... and by the time the later order arrived, the orders subscriber had none of them.
    seen_by_orders = drain_until(orders, order_id)
    assert {e.type.value for e in seen_by_orders} == {"ORDER_RECEIVED"}
    assert not set(stock_ids) & {e.payload.id for e in seen_by_orders}
    # Nor later: a second order, published after everything else, is the marker to read up to.
    marker = unique("order")
    bus.publish(ORDERS, order(marker))
    assert not set(stock_ids) & {e.payload.id for e in drain_until(orders, marker)}


def test_plain_redis_subscriber_receives_each_event_as_json_with_its_id(bus: EventBus, redis_url: str):
    """A simple subscriber needs nothing but SUBSCRIBE rakuda:realtime:orders."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe("rakuda:realtime:orders")
        confirmation = pubsub.get_message(timeout=5)
        assert confirmation is not None and confirmation["type"] == "subscribe"
        events = [order(unique(), total=i) for i in range(3)]

        ids = [bus.publish(ORDERS, event) for event in events]

        wanted = {e.payload.id for e in events}
        received: list[dict] = []
        deadline = time.time() + 10
        while len(received) < len(events) and time.time() < deadline:
            message = pubsub.get_message(timeout=1)
            if message is None or message["type"] != "message":
                continue
            body = json.loads(message["data"])  # other tests publish here too: keep only ours
            if body["payload"]["id"] in wanted:
                received.append(body)
        assert [b["id"] for b in received] == ids
        assert [b["payload"]["id"] for b in received] == [e.payload.id for e in events]
        assert received[2] == {
            "id": ids[2],
            "type": "ORDER_RECEIVED",
            "payload": {"id": events[2].payload.id, "action": "created", "data": {"total": 2}},
            "timestamp": events[2].timestamp,
        }
    finally:
        pubsub.close()
        client.close()


# --- what publish refuses ---


def _valid(**overrides: object) -> dict:
    event: dict = {"type": "ORDER_RECEIVED", "payload": {"id": unique(), "action": "created", "data": {"n": 1}}}
    for key, value in overrides.items():
        if key == "type":
            event["type"] = value
        else:
            event["payload"][key] = value
    return event


@pytest.mark.parametrize(
    ("event", "field"),
    [
        pytest.param(_valid(type="ORDER_SHIPPED"), "type", id="unknown-type"),
        pytest.param(_valid(action="archived"), "payload.action", id="unknown-action"),
        pytest.param({"type": "ORDER_RECEIVED", "payload": {"action": "created"}}, "payload.id", id="missing-id"),
        pytest.param(_valid(data={"tags": {"a", "b"}}), "payload.data.tags", id="set-in-data"),
        pytest.param(_valid(data={"price": math.nan}), "payload.data.price", id="nan-in-data"),
        pytest.param(
            _valid(data={"nested": [{"ok": 1}, {"when": object()}]}),
            "payload.data.nested[1].when",
            id="object-deep-in-data",
        ),
    ],
)
def test_invalid_event_names_the_field_and_publishes_nothing(
    bus: EventBus, redis_client: redis.Redis, event: dict, field: str
):
    with pytest.raises(InvalidEventError) as caught:
        bus.publish(ORDERS, event)

    assert caught.value.field == field
    assert field in str(caught.value)
    assert redis_client.exists(HISTORY_STREAM) == 0


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            '{"type":"ORDER_RECEIVED","payload":{"id":"x-1","action":"created","data":{"price":NaN}}}',
            id="nan-in-json-text",
        ),
        pytest.param(
            RealTimeEvent(
                type="ORDER_RECEIVED", payload=EventPayload(id="x-2", action="created", data={"price": math.inf})
            ),
            id="infinity-in-a-built-model",
        ),
        pytest.param(
            RealTimeEvent(
                type="ORDER_RECEIVED", payload=EventPayload(id="x-3", action="created", data={"price": {1, 2}})
            ),
            id="set-in-a-built-model",
        ),
    ],
)
def test_non_json_data_in_any_input_form_names_the_field(bus: EventBus, redis_client: redis.Redis, event: object):
    """JSON text and ready-made models get the same check as dicts (not a bare ValueError/TypeError)."""
    with pytest.raises(InvalidEventError) as caught:
        bus.publish(ORDERS, event)

    assert caught.value.field == "payload.data.price"
    assert redis_client.exists(HISTORY_STREAM) == 0


def test_one_invalid_event_in_a_batch_publishes_none_of_it(bus: EventBus, redis_client: redis.Redis):
    batch = [order(unique()), _valid(action="archived"), order(unique())]

    with pytest.raises(InvalidEventError):
        bus.publish_many(ORDERS, batch)

    assert redis_client.exists(HISTORY_STREAM) == 0


def test_event_on_the_wrong_channel_is_refused(bus: EventBus, redis_client: redis.Redis):
    with pytest.raises(ChannelMismatchError) as caught:
        bus.publish(ORDERS, stock(unique()))

    assert "INVENTORY_CHANGE" in str(caught.value)
    assert ORDERS in str(caught.value)
    assert redis_client.exists(HISTORY_STREAM) == 0


def test_unknown_channel_is_refused(bus: EventBus, redis_client: redis.Redis):
    with pytest.raises(UnknownChannelError) as caught:
        bus.publish("rakuda:realtime:shipping", order(unique()))

    assert "rakuda:realtime:shipping" in str(caught.value)
    assert redis_client.exists(HISTORY_STREAM) == 0


def test_event_alone_is_published_on_the_channel_of_its_type(bus: EventBus, redis_client: redis.Redis):
    event = stock(unique())

    bus_id = bus.publish(event)

    [(entry_id, fields)] = redis_client.xrange(HISTORY_STREAM)
    assert (entry_id, fields["t"]) == (bus_id, "INVENTORY_CHANGE")
    assert Channel.of_type("INVENTORY_CHANGE") is Channel.INVENTORY
    assert (Channel.INVENTORY.value, Channel.INVENTORY.short_name) == (INVENTORY, "inventory")


def test_channel_mismatch_is_a_value_error_naming_the_type_and_both_channels(bus: EventBus):
    with pytest.raises(ValueError) as caught:
        bus.publish_many("orders", [order(unique()), stock(unique())])

    assert isinstance(caught.value, ChannelMismatchError)
    assert all(part in str(caught.value) for part in ("INVENTORY_CHANGE", ORDERS, INVENTORY))


def test_publish_many_without_a_channel_sends_each_event_to_its_own(bus: EventBus, redis_url: str):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(ORDERS, INVENTORY)
        for _ in range(2):
            assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        events = [order(unique()), stock(unique()), order(unique())]

        ids = bus.publish_many(events)

        got: dict[str, str] = {}
        deadline = time.time() + 10
        while len(got) < 3 and time.time() < deadline:
            message = pubsub.get_message(timeout=1)
            if message is not None and message["type"] == "message":
                body = json.loads(message["data"])
                if body["id"] in ids:
                    got[body["id"]] = message["channel"]
        assert got == {ids[0]: ORDERS, ids[1]: INVENTORY, ids[2]: ORDERS}
    finally:
        pubsub.close()
        client.close()


def test_settings_and_redis_of_an_unbound_bus_raise_instead_of_connecting():
    bus = EventBus()

    for attribute in ("settings", "redis"):
        with pytest.raises(BusNotInitializedError) as caught:
            getattr(bus, attribute)
        assert "initialize(" in str(caught.value)
    assert not bus.initialized


def test_publish_binds_an_unbound_bus_to_the_environment(monkeypatch: pytest.MonkeyPatch, settings: Settings,
                                                         redis_client: redis.Redis):
    """``from shared.event_bus import event_bus; event_bus.publish(...)`` works without initialize()."""
    monkeypatch.setattr("shared.event_bus.get_settings", lambda: settings)
    bus = EventBus()
    try:
        bus_id = bus.publish(order(unique()))

        assert bus.initialized and bus.settings is settings
        assert [entry_id for entry_id, _ in redis_client.xrange(HISTORY_STREAM)] == [bus_id]
    finally:
        bus.close()


# --- publish_many ---


def test_publish_many_returns_the_ids_in_publish_order(bus: EventBus, redis_client: redis.Redis):
    events = [order(f"batch-{i}") for i in range(25)]

    ids = bus.publish_many(ORDERS, events)

    entries = redis_client.xrange(HISTORY_STREAM)
    assert ids == [entry_id for entry_id, _ in entries]
    assert [json.loads(f["e"])["payload"]["id"] for _, f in entries] == [f"batch-{i}" for i in range(25)]
    assert bus.publish_many(ORDERS, []) == []


def _script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("eval", "evalsha", "fcall"))


def test_publish_many_is_one_round_trip_per_chunk(private_redis: RedisServer, settings: Settings):
    bus = EventBus()
    bus.initialize(settings.replace(redis_url=private_redis.url))
    admin = redis.Redis.from_url(private_redis.url, decode_responses=True)
    try:
        bus.publish(ORDERS, order(unique()))  # loads the script
        count = PUBLISH_CHUNK * 2 + 7
        events = [order(f"bulk-{i}") for i in range(count)]
        before = _script_calls(admin)

        ids = bus.publish_many(ORDERS, events)

        assert _script_calls(admin) - before == 3
        assert len(ids) == len(set(ids)) == count
        assert admin.xlen(HISTORY_STREAM) == count + 1
        assert ids == [entry_id for entry_id, _ in admin.xrange(HISTORY_STREAM)][1:]
    finally:
        bus.close()
        admin.close()


def _connections_on(admin: redis.Redis, db: int) -> int:
    me = admin.client_id()
    return sum(1 for c in admin.client_list() if int(c["db"]) == db and int(c["id"]) != me)


def test_close_releases_the_redis_connections(settings: Settings, redis_url: str):
    """initialize() may be called again (Celery's worker_process_init): the old pool must not linger."""
    db = int(redis_url.rsplit("/", 1)[1])
    admin = redis.Redis.from_url(redis_url)
    bus = EventBus()
    try:
        before = _connections_on(admin, db)  # the fixtures' own
        bus.initialize(settings)
        client = bus.redis  # held, so that garbage collection cannot close it for the bus
        bus.publish(ORDERS, order(unique()))
        assert _connections_on(admin, db) == before + 1

        bus.close()

        eventually(lambda: _connections_on(admin, db) <= before, 3, what="the bus's connection closed")
        assert _connections_on(admin, db) == before
        del client
    finally:
        bus.close()
        admin.close()


# --- failures are loud ---


def test_publish_with_redis_down_raises_publish_error(settings: Settings):
    bus = EventBus()
    bus.initialize(settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        with pytest.raises(PublishError) as caught:
            bus.publish(ORDERS, order(unique()))
        assert ORDERS in str(caught.value)
        with pytest.raises(PublishError):
            bus.publish_many(ORDERS, [order(unique()), order(unique())])
    finally:
        bus.close()


def test_disabled_realtime_publishes_nothing_and_logs_it(
    settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
):
    bus = EventBus()
    bus.initialize(settings.replace(realtime_enabled=False))
    try:
        with caplog.at_level(logging.INFO, logger="shared.event_bus"):
            assert bus.publish(ORDERS, order(unique())) is None
            assert bus.publish_many(ORDERS, [order(unique()), order(unique())]) == []
    finally:
        bus.close()

    assert redis_client.exists(HISTORY_STREAM) == 0
    notes = [r for r in caplog.records if r.name == "shared.event_bus" and "REALTIME_ENABLED" in r.getMessage()]
    assert len(notes) == 2
    assert ORDERS in notes[0].getMessage()


def test_disabled_realtime_still_refuses_invalid_events(settings: Settings):
    bus = EventBus()
    bus.initialize(settings.replace(realtime_enabled=False))
    try:
        with pytest.raises(InvalidEventError):
            bus.publish(ORDERS, _valid(action="archived"))
    finally:
        bus.close()


def test_a_channel_nobody_listens_to_is_not_sent_a_publish_and_one_with_a_listener_is(
        settings: Settings, private_redis: RedisServer):
    """The history stream gets every event; PUBLISH goes only to channels with a subscriber of
    their own or any pattern subscriber (a private Redis: pub/sub is shared by all databases)."""
    bus = EventBus()
    bus.initialize(settings.replace(redis_url=private_redis.url))
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    try:
        def publishes() -> int:
            return client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)

        bus.publish_many([order(unique()) for _ in range(3)] + [stock(unique()) for _ in range(2)])
        assert publishes() == 0 and client.xlen(HISTORY_STREAM) == 5
        received = subscribe_and_wait(bus, client, ORDERS)
        last = order(unique())
        bus.publish_many([stock(unique()), order(unique()), stock(unique()), last])
        assert publishes() == 2  # the two orders, not the inventory events
        assert len(drain_until(received, last.payload.id)) == 2
        patterns = client.pubsub()
        patterns.psubscribe("rakuda:realtime:*")
        eventually(lambda: client.pubsub_numpat() == 1, what="the pattern subscription")
        bus.publish_many([stock(unique()), stock(unique())])
        assert publishes() == 4 and client.xlen(HISTORY_STREAM) == 11
        patterns.close()
    finally:
        client.close()
        bus.close()
