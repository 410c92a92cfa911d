"""Resuming the SSE stream of a real gunicorn + gevent gateway: Last-Event-ID, the history's bounds, resets."""

from __future__ import annotations

import time

import pytest
import redis

from shared.config import Settings
from shared.constants import HISTORY_EPOCH
from shared.event_bus import EventBus
from tests.sse_client import SSEClient
from tests.test_stream import KEY, ev, payload_ids, stream

# One gateway for the module's tests that run with the default settings (tests/module_gateway.py);
# a test that changes its settings starts its own.
pytestmark = pytest.mark.module_gateway


def test_resume_after_disconnect_loses_no_event(gateway, bus):
    with stream(gateway, "?channels=inventory,orders") as client:
        bus.publish("inventory", ev("INVENTORY_CHANGE", "before"))
        assert payload_ids(client.next_event(5)) == ["before"]
        last_id = client.last_id
    missed_inventory = [ev("INVENTORY_CHANGE", f"p-{i}") for i in range(5)]
    bus.publish_many("inventory", missed_inventory)
    bus.publish("orders", ev("ORDER_RECEIVED", "o-away", "created"))
    bus.publish("pricing", ev("PRICE_CHANGE", "not-mine"))
    with SSEClient(gateway.url + "/api/realtime/events?channels=inventory,orders",
                   {**KEY, "Last-Event-ID": last_id}) as client:
        connected = client.next(5)
        assert connected.event == "connected" and connected.json["resumed"] is True
        got = [client.next_event(5) for _ in range(2)]
    seen = {m.event: payload_ids(m) for m in got}
    assert seen == {"INVENTORY_CHANGE": [f"p-{i}" for i in range(5)], "ORDER_RECEIVED": ["o-away"]}


def test_a_client_that_saw_only_connected_still_resumes_without_a_gap(gateway, bus):
    """A stream lost before its first event or heartbeat: the `connected` id is where to resume from."""
    with SSEClient(gateway.url + "/api/realtime/events?channels=inventory", KEY) as client:
        connected = client.next(5)
        assert connected.event == "connected" and connected.id
    missed = [ev("INVENTORY_CHANGE", f"gap-{i}") for i in range(3)]
    bus.publish_many("inventory", missed)
    with SSEClient(gateway.url + "/api/realtime/events?channels=inventory",
                   {**KEY, "Last-Event-ID": connected.id}) as client:
        again = client.next(5)
        assert again.event == "connected" and again.json["resumed"] is True
        assert again.id == connected.id  # resuming, `connected` repeats the client's own cursor
        assert payload_ids(client.next_event(5)) == [f"gap-{i}" for i in range(3)]


def test_resume_with_query_parameter_for_clients_without_headers(gateway, bus):
    with stream(gateway, "?channels=orders") as client:
        bus.publish("orders", ev("ORDER_RECEIVED", "o-1", "created"))
        client.next_event(5)
        last_id = client.last_id
    bus.publish("orders", ev("ORDER_RECEIVED", "o-2", "created"))
    with SSEClient(f"{gateway.url}/api/realtime/events?channels=orders&lastEventId={last_id}", KEY) as client:
        assert client.next(5).json["resumed"] is True
        assert payload_ids(client.next_event(5)) == ["o-2"]


def test_id_never_skips_an_event_waiting_in_another_window(gateway_factory, bus):
    """An order leaves while a price change still waits: resuming from the order's id gets it."""
    gateway = gateway_factory(SSE_DEBOUNCE_WINDOW="1500")
    with stream(gateway, "?channels=pricing") as watcher:
        with stream(gateway, "?channels=orders,pricing") as client:
            bus.publish("orders", ev("ORDER_RECEIVED", "o-1", "created"))
            time.sleep(0.5)
            bus.publish("pricing", ev("PRICE_CHANGE", "l-1"))
            message = client.next_event(5)
            assert message.event == "ORDER_RECEIVED"
            last_id = message.id
        assert payload_ids(watcher.next_event(5)) == ["l-1"]  # the price change leaves while we are away
    with SSEClient(gateway.url + "/api/realtime/events?channels=orders,pricing",
                   {**KEY, "Last-Event-ID": last_id}) as client:
        assert client.next(5).json["resumed"] is True
        replayed = client.next_event(5)
    assert replayed.event == "PRICE_CHANGE" and payload_ids(replayed) == ["l-1"]


def test_resume_replays_what_left_while_away_even_past_a_held_window(gateway_factory, bus):
    """Regression (found by the property test): an order that left after a still-held
    inventory change, while the client was away, was not replayed on resume."""
    gateway = gateway_factory(SSE_DEBOUNCE_WINDOW="3000")
    with stream(gateway, "?channels=orders,inventory") as client:
        last_id = client.next(5).id  # a heartbeat's cursor
    t0 = time.time()
    bus.publish("orders", ev("ORDER_RECEIVED", "o-1", "created"))  # orders' window: t0 .. t0+3
    time.sleep(1.0)
    bus.publish("inventory", ev("INVENTORY_CHANGE", "p-1"))  # inventory's window: t0+1 .. t0+4
    time.sleep(0.2)
    bus.publish("orders", ev("ORDER_RECEIVED", "o-2", "created"))
    time.sleep(max(0.0, t0 + 3.4 - time.time()))  # the orders have left, the inventory change waits
    with SSEClient(gateway.url + "/api/realtime/events?channels=orders,inventory",
                   {**KEY, "Last-Event-ID": last_id}) as client:
        assert client.next(5).json["resumed"] is True
        got = {m.event: payload_ids(m) for m in (client.next_event(5), client.next_event(5))}
    assert got == {"ORDER_RECEIVED": ["o-1", "o-2"], "INVENTORY_CHANGE": ["p-1"]}


@pytest.mark.parametrize("last_id", ["999999999999999-0", "not-an-id"])
def test_unknown_last_event_id_gets_reset(gateway, last_id):
    with SSEClient(gateway.url + "/api/realtime/events", {**KEY, "Last-Event-ID": last_id}) as client:
        connected = client.next(5)
        assert connected.event == "connected" and connected.json["resumed"] is False
        assert client.next(5).event == "reset"


def cursor(settings: Settings, bus_id: str) -> str:
    """The SSE id the gateway would give for ``bus_id`` (the history's epoch, then the position)."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        return f"{client.get(HISTORY_EPOCH)}:{bus_id}"
    finally:
        client.close()


def test_id_older_than_the_history_gets_reset(gateway_factory, bus, settings):
    gateway = gateway_factory(REALTIME_HISTORY_MAX="100")
    small = EventBus()
    small.initialize(Settings.from_env({**settings.env_items(), "REALTIME_HISTORY_MAX": "100"}))
    first = small.publish("listings", ev("LISTING_UPDATE", "old"))
    small.publish_many("listings", [ev("LISTING_UPDATE", f"n-{i}") for i in range(400)])
    small.close()
    with SSEClient(gateway.url + "/api/realtime/events", {**KEY, "Last-Event-ID": cursor(settings, first)}) as client:
        assert client.next(5).json["resumed"] is False
        assert client.next(5).event == "reset"


def test_history_is_bounded_by_age_and_an_id_aged_out_gets_reset(gateway_factory, settings):
    gateway = gateway_factory(REALTIME_HISTORY_MAX_AGE="1")
    aging = EventBus()
    aging.initialize(Settings.from_env({**settings.env_items(), "REALTIME_HISTORY_MAX_AGE": "1"}))
    first = aging.publish("listings", ev("LISTING_UPDATE", "old"))
    aging.publish_many("listings", [ev("LISTING_UPDATE", f"o-{i}") for i in range(200)])
    time.sleep(1.5)
    aging.publish("listings", ev("LISTING_UPDATE", "new"))  # trims what is older than 1 s
    aging.close()
    with SSEClient(gateway.url + "/api/realtime/events", {**KEY, "Last-Event-ID": cursor(settings, first)}) as client:
        assert client.next(5).json["resumed"] is False
        assert client.next(5).event == "reset"


def test_resume_across_a_redis_that_lost_its_data_is_a_reset_not_a_gap(gateway, bus, redis_client):
    """Regression: after a flush (or a restart without persistence) the new history looked
    complete, so a resume replayed only what the new Redis had and lost the rest silently."""
    with stream(gateway, "?channels=orders") as client:
        bus.publish("orders", ev("ORDER_RECEIVED", "a", "created"))
        client.next_event(5)
        last_id = client.last_id
    bus.publish("orders", ev("ORDER_RECEIVED", "b", "created"))  # missed, then lost with the data
    redis_client.flushdb()
    bus.publish("orders", ev("ORDER_RECEIVED", "c", "created"))
    with SSEClient(gateway.url + "/api/realtime/events?channels=orders", {**KEY, "Last-Event-ID": last_id}) as client:
        assert client.next(5).json["resumed"] is False
        assert client.next(5).event == "reset"


def test_an_entry_that_is_not_an_event_does_not_stall_the_stream(gateway, bus, redis_client):
    with stream(gateway, "?channels=orders") as client:
        redis_client.xadd("rakuda:realtime:history", {"foo": "bar"})
        redis_client.xadd("rakuda:realtime:history", {"t": "NOT_A_TYPE", "e": "{}"})
        bus.publish("orders", ev("ORDER_RECEIVED", "after", "created"))
        assert payload_ids(client.next_event(5)) == ["after"]
