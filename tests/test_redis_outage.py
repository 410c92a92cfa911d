"""Redis goes away under a running gateway: clients stay, status says so, nothing is lost after."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import redis
import requests

from shared.config import Settings
from shared.constants import EVENT_CHANNELS
from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent
from tests.servers import GatewayServer, RedisServer
from tests.sse_client import SSEClient

API = "/api/realtime"
ORDERS = EVENT_CHANNELS["ORDERS"]
PUBLISHER = "test-publisher"

pytestmark = pytest.mark.slow


def new_order() -> RealTimeEvent:
    return RealTimeEvent.create("ORDER_RECEIVED", f"order-{uuid.uuid4().hex[:10]}", "created")


def publisher(settings: Settings, url: str) -> EventBus:
    """A bus on ``url`` whose connections carry a name, so that the test can spare them."""
    bus = EventBus()
    bus.initialize(
        settings.replace(redis_url=url), client=redis.Redis.from_url(url, client_name=PUBLISHER)
    )
    return bus


def health(server: GatewayServer) -> tuple[int, dict]:
    response = requests.get(server.url + "/api/health", timeout=10)
    return response.status_code, response.json()


def status(server: GatewayServer) -> dict:
    response = requests.get(server.url + API + "/status", headers=server.headers(), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def order_ids(stream: SSEClient, wanted: set[str], timeout: float) -> set[str]:
    """Payload ids of the orders received until all of ``wanted`` are in, or ``timeout``."""
    got: set[str] = set()
    deadline = time.time() + timeout
    while not wanted <= got and (remaining := deadline - time.time()) > 0:
        try:
            message = stream.next_event(remaining)
        except TimeoutError:
            break
        if message.event == "ORDER_RECEIVED":
            got |= {event["payload"]["id"] for event in message.json["events"]}
    return got


def messages_for(stream: SSEClient, seconds: float) -> list:
    """What arrives in ``seconds``; unlike ``collect()`` it never lets a read time out (a timed-out
    socket file cannot be read again), so it relies on the 1 s heartbeat to come back in time."""
    out = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        out.append(stream.next(5))
    return out


def test_clients_stay_connected_through_a_redis_restart_and_get_what_was_published(
    private_redis: RedisServer, gateway_factory, settings: Settings
):
    server = gateway_factory(REDIS_URL=private_redis.url)
    with SSEClient(server.url + API + "/events?channels=orders", headers=server.headers()) as stream:
        assert stream.next(10).event == "connected"
        bus = publisher(settings, private_redis.url)
        try:
            before = new_order()
            bus.publish(ORDERS, before)
            assert order_ids(stream, {before.payload.id}, 10) == {before.payload.id}
        finally:
            bus.close()

        private_redis.stop()

        # The stream stays open and keeps beating (heartbeat 1 s) while Redis is down.
        messages = messages_for(stream, 2.5)
        assert not stream.closed
        assert sum(m.event == "heartbeat" for m in messages) >= 2
        code, body = health(server)
        assert code == 200
        assert body["redisReachable"] is False
        assert body["status"] == "degraded"
        down = status(server)
        assert down["redisReachable"] is False
        assert down["activeConnections"] == 1
        assert down["process"]["redisReachable"] is False
        # A new stream still opens (a valid key needs no Redis) and is counted.
        with SSEClient(server.url + API + "/events?channels=orders", headers=server.headers()) as late:
            assert late.status == 200
            assert late.next(10).event == "connected"

        private_redis.start()  # same port, empty: no persistence
        bus = publisher(settings, private_redis.url)
        try:
            during = new_order()
            bus.publish(ORDERS, during)  # before the gateway has noticed Redis is back

            # The reader backs off up to 5 s (with jitter) between attempts: allow for it.
            assert order_ids(stream, {during.payload.id}, 20) == {during.payload.id}
            after = new_order()
            bus.publish(ORDERS, after)
            assert order_ids(stream, {after.payload.id}, 10) == {after.payload.id}
        finally:
            bus.close()
        assert not stream.closed

    code, body = health(server)
    assert (code, body["redisReachable"], body["status"]) == (200, True, "ok")
    assert status(server)["redisReachable"] is True
    # The gateway's own lines are in the text format too, down to LOG_LEVEL (info by default).
    log = server.read_log()
    assert re.search(r" WARNING gateway\.reader: Redis unreachable", log), log[-3000:]
    assert re.search(r" INFO gateway\.reader: Redis reachable again", log), log[-3000:]


def _kill_all_but_the_publisher(admin: redis.Redis) -> list[str]:
    """Kill every normal connection except the publisher's and our own; returns their last commands."""
    killed = []
    me = admin.client_id()
    for client in admin.client_list(_type="normal"):
        if int(client["id"]) == me or client["name"] == PUBLISHER:
            continue
        if admin.client_kill_filter(_id=client["id"]):
            killed.append(client["cmd"])
    return killed


def test_killing_the_gateways_redis_connections_loses_no_event(
    private_redis: RedisServer, gateway_factory, settings: Settings
):
    server = gateway_factory(REDIS_URL=private_redis.url)
    admin = redis.Redis.from_url(private_redis.url, decode_responses=True)
    bus = publisher(settings, private_redis.url)
    try:
        with SSEClient(server.url + API + "/events?channels=orders", headers=server.headers()) as stream:
            assert stream.next(10).event == "connected"
            published: set[str] = set()
            killed: list[str] = []
            for i in range(60):
                event = new_order()
                bus.publish(ORDERS, event)
                published.add(event.payload.id)
                if i % 15 == 7:
                    killed += _kill_all_but_the_publisher(admin)
                time.sleep(0.04)

            assert "xread" in killed  # the reader's connection was among them
            got = order_ids(stream, published, 20)
            assert published - got == set(), f"{len(published - got)} of {len(published)} events never arrived"
            assert got == published
            assert not stream.closed
    finally:
        bus.close()
        admin.close()
