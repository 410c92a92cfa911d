"""Several gateway processes on one Redis: each delivers every event, and the totals add up."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from shared.config import Settings
from shared.constants import EVENT_CHANNELS
from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent
from tests.servers import GatewayServer
from tests.sse_client import SSEClient
from tests.waiting import eventually

API = "/api/realtime"
ORDERS = EVENT_CHANNELS["ORDERS"]


def get_json(server: GatewayServer, path: str) -> dict:
    response = requests.get(server.url + API + path, headers=server.headers(), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def poll(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 3.0) -> Any:
    """``read()`` until ``done(value)``, for up to ``timeout`` s (processes report every 0.2 s); the
    last value read, which the caller's assertions then describe if it never got there."""
    last: list[Any] = []

    def reads_done() -> bool:
        last[:] = [read()]
        return done(last[0])

    with contextlib.suppress(AssertionError):
        eventually(reads_done, timeout=timeout, interval=0.1)
    return last[0]


def open_stream(server: GatewayServer, channels: str = "orders") -> tuple[SSEClient, dict]:
    stream = SSEClient(server.url + API + f"/events?channels={channels}", headers=server.headers())
    assert stream.status == 200
    connected = stream.next(10)
    assert connected.event == "connected"
    return stream, connected.json


def receive_payload_ids(stream: SSEClient, wanted: set[str], timeout: float = 10.0) -> set[str]:
    """Payload ids of the events this stream received, until it has all of ``wanted``."""
    got: set[str] = set()
    deadline = time.time() + timeout
    while not wanted <= got and time.time() < deadline:
        try:
            message = stream.next_event(max(0.1, deadline - time.time()))
        except TimeoutError:
            break
        if message.event == "ORDER_RECEIVED":
            got |= {event["payload"]["id"] for event in message.json["events"]}
    return got


def publish_orders(bus: EventBus, count: int) -> set[str]:
    ids = {f"order-{uuid.uuid4().hex[:8]}-{i}" for i in range(count)}
    for payload_id in sorted(ids):
        bus.publish(ORDERS, RealTimeEvent.create("ORDER_RECEIVED", payload_id, "created"))
    return ids


@pytest.fixture
def two_gateways(gateway_factory) -> tuple[GatewayServer, GatewayServer]:
    """Two gateway processes (two instances) sharing one Redis database."""
    return gateway_factory(), gateway_factory()


def test_a_client_on_each_process_receives_every_event(two_gateways, bus: EventBus):
    first, second = two_gateways
    with ExitStack() as stack:
        stream_a, hello_a = open_stream(first)
        stack.callback(stream_a.close)
        stream_b, hello_b = open_stream(second)
        stack.callback(stream_b.close)
        assert hello_a["processId"] != hello_b["processId"]

        published = publish_orders(bus, 12)

        assert receive_payload_ids(stream_a, published) == published
        assert receive_payload_ids(stream_b, published) == published


def test_status_stats_and_connections_add_up_both_processes(two_gateways, bus: EventBus):
    first, second = two_gateways
    with ExitStack() as stack:
        stream_a, hello_a = open_stream(first)
        stack.callback(stream_a.close)
        stream_b, hello_b = open_stream(second)
        stack.callback(stream_b.close)
        published = publish_orders(bus, 5)
        assert receive_payload_ids(stream_a, published) == published
        assert receive_payload_ids(stream_b, published) == published

        for server in (first, second):
            status = poll(
                lambda s=server: get_json(s, "/status"),
                lambda st: st["processCount"] == 2 and st["activeConnections"] == 2,
            )
            assert status["processCount"] == 2
            assert status["activeConnections"] == 2
            assert status["totalConnections"] >= 2
            assert {p["processId"] for p in status["processes"]} == {hello_a["processId"], hello_b["processId"]}
            assert [p["activeConnections"] for p in status["processes"]] == [1, 1]

            stats = poll(
                lambda s=server: get_json(s, "/stats"),
                lambda st: st["types"].get("ORDER_RECEIVED", {}).get("delivered") == 2 * len(published),
            )
            assert stats["processes"] == 2
            assert stats["types"]["ORDER_RECEIVED"]["delivered"] == 2 * len(published)
            assert stats["connections"]["active"] == 2

            listing = poll(lambda s=server: get_json(s, "/connections"), lambda c: c["total"] == 2)
            assert listing["total"] == 2
            by_id = {c["id"]: c for c in listing["connections"]}
            assert set(by_id) == {hello_a["connectionId"], hello_b["connectionId"]}
            assert by_id[hello_a["connectionId"]]["processId"] == hello_a["processId"]
            assert by_id[hello_b["connectionId"]]["processId"] == hello_b["processId"]
            assert by_id[hello_a["connectionId"]]["channels"] == ["orders"]
            assert by_id[hello_a["connectionId"]]["bytesSent"] > 0


def test_two_gunicorn_workers_both_deliver_and_report(gateway_factory, bus: EventBus):
    server = gateway_factory(workers=2)
    with ExitStack() as stack:
        streams: dict[str, SSEClient] = {}
        # The kernel hands each connection to whichever worker accepts first, and the second
        # worker may still be booting: keep connecting for a while until both have one.
        deadline = time.time() + 10
        while len(streams) < 2 and time.time() < deadline:
            stream, hello = open_stream(server)
            if hello["processId"] in streams:
                stream.close()
                time.sleep(0.05)
            else:
                stack.callback(stream.close)
                streams[hello["processId"]] = stream
        assert len(streams) == 2, "in 10 s of connecting, every stream went to one worker"

        published = publish_orders(bus, 6)

        for stream in streams.values():
            assert receive_payload_ids(stream, published) == published
        status = poll(lambda: get_json(server, "/status"), lambda st: st["processCount"] == 2)
        assert {p["processId"] for p in status["processes"]} == set(streams)


def test_client_resumes_on_the_other_process_with_its_token_and_loses_nothing(two_gateways, bus: EventBus):
    """A gateway goes away; its browser reconnects to another one (same SECRET_KEY, same history)."""
    first, second = two_gateways
    response = requests.post(first.url + API + "/token", headers=first.headers(), timeout=10)
    token = response.json()["token"]
    with SSEClient(first.url + API + f"/events?channels=orders&token={token}") as stream:
        assert stream.next(10).event == "connected"
        seen = publish_orders(bus, 4)
        assert receive_payload_ids(stream, seen) == seen
        last_id = stream.last_id
    assert last_id is not None

    missed = publish_orders(bus, 7)  # while the client is away

    url = second.url + API + f"/events?channels=orders&token={token}&lastEventId={last_id}"
    with SSEClient(url) as stream:
        assert stream.status == 200
        hello = stream.next(10)
        assert hello.event == "connected"
        assert hello.json["resumed"] is True
        got = receive_payload_ids(stream, missed)
        assert missed <= got
        assert got <= missed | seen  # at least once: a repeat is allowed, a stranger is not


def test_an_address_blocked_on_one_process_is_blocked_on_the_other(gateway_factory):
    first, second = gateway_factory(AUTH_MAX_FAILURES="3"), gateway_factory(AUTH_MAX_FAILURES="3")
    assert get_json(second, "/status")["enabled"] is True  # the second one is up and serving
    for _ in range(3):
        response = requests.get(first.url + API + "/status", headers={"X-API-Key": "guess"}, timeout=10)
        assert response.status_code == 401

    def second_answers() -> int:
        return requests.get(second.url + API + "/status", headers=second.headers(), timeout=10).status_code

    assert poll(second_answers, lambda code: code == 429) == 429


def _clients_on_db(admin: redis.Redis, db: int) -> list[dict]:
    """The gateway's connections to this database (it names them; other tests' leftovers don't count)."""
    return [c for c in admin.client_list() if int(c["db"]) == db and c["name"].startswith("rakuda-gateway")]


def _local_tcp_ports(root_pid: int) -> set[int]:
    """Local TCP ports held by a process and its descendants (read from /proc).

    A Redis connection's ``addr`` is the client's side, so these ports pick one gateway's
    connections out of CLIENT LIST, whatever other processes use the same database.
    """
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    pids = {root_pid}
    while True:
        more = {pid for pid, parent in parents.items() if parent in pids} - pids
        if not more:
            break
        pids |= more
    inodes: set[str] = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes.update(link[len("socket:["):-1] for link in links if link.startswith("socket:["))
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_redis_connections_stay_few_however_many_clients(gateway_factory, settings: Settings, redis_url: str):
    """Regression guard against a per-client Redis subscription (flask-sse's design).

    The gateway's connections are its reader, its command pool and its older-history pool,
    whatever the number of clients. Small pools here make the bound far below one per client;
    how many of a pool's connections are open at a moment depends on how many greenlets asked
    at once, so the bound is the pool sizes, never an exact count.
    """
    gateway = gateway_factory(REDIS_COMMAND_POOL_SIZE="3", REALTIME_HISTORY_CONNECTIONS="1")
    db = int(redis_url.rsplit("/", 1)[1])
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    bus = EventBus()
    with ExitStack() as stack:
        stack.callback(admin.close)
        first, _ = open_stream(gateway, channels="orders,inventory")
        stack.callback(first.close)
        time.sleep(0.5)  # let the reader and the reporter connect

        streams = [first]
        for _ in range(49):
            stream, _hello = open_stream(gateway, channels="orders,inventory")
            stack.callback(stream.close)
            streams.append(stream)
        status = poll(lambda: get_json(gateway, "/status"), lambda st: st["activeConnections"] == 50)
        assert status["activeConnections"] == 50
        # Delivering to all of them needs no Redis connection per client either. (The bus gets a
        # client of ours, whose close() really disconnects, so that it is not counted below.)
        bus.initialize(settings, client=redis.Redis.from_url(redis_url))
        stack.callback(bus.close)
        published = publish_orders(bus, 3)
        for stream in streams:
            assert receive_payload_ids(stream, published) == published
        bus.close()

        # Only this gateway's: a process left behind by an earlier test on the same database
        # number is not what is measured here.
        assert gateway.proc is not None
        ports = _local_tcp_ports(gateway.proc.pid)
        with_fifty = [c for c in _clients_on_db(admin, db) if int(c["addr"].rsplit(":", 1)[1]) in ports]
        by_name = Counter(c["name"] for c in with_fifty)
        seen = [(c["name"], c["cmd"]) for c in with_fifty]
        assert by_name["rakuda-gateway-reader"] == 1, seen
        assert by_name["rakuda-gateway"] <= 3, seen
        assert by_name["rakuda-gateway-history"] <= 1, seen
        assert len(with_fifty) <= 5 < len(streams), seen


def test_a_process_that_died_drops_out_of_the_totals(two_gateways):
    first, second = two_gateways
    assert poll(lambda: get_json(first, "/status"), lambda st: st["processCount"] == 2)["processCount"] == 2
    second.proc.kill()  # no goodbye: its report has to expire
    second.proc.wait()
    status = poll(lambda: get_json(first, "/status"), lambda st: st["processCount"] == 1, timeout=5.0)
    assert status["processCount"] == 1
