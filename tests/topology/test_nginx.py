"""Debian's nginx running deploy/nginx.conf in front of two real gateways."""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import statistics
import threading
import time

import pytest

from shared.realtime import RealTimeEvent
from tests.servers import GatewayServer
from tests.sse_client import SSEClient
from tests.topology.clients import ResumingClient
from tests.topology.procs import Nginx, sigkill_gateway
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.topology,
              pytest.mark.skipif(shutil.which("nginx") is None, reason="Debian's nginx is not installed")]

KEY = {"X-API-Key": "test-key"}
EVENTS = "/api/realtime/events?channels=inventory,orders"


def ev(event_type: str, ident: str) -> RealTimeEvent:
    return RealTimeEvent.create(event_type, ident, "created" if event_type == "ORDER_RECEIVED" else "updated", None)


@pytest.fixture
def two_gateways(gateway_factory):
    return [gateway_factory(TRUSTED_PROXIES="1"), gateway_factory(TRUSTED_PROXIES="1")]


@pytest.fixture
def nginx(two_gateways):
    proxy = Nginx([f"127.0.0.1:{g.port}" for g in two_gateways]).start()
    yield proxy
    proxy.stop()


def test_config_has_the_contracted_names():
    from tests.topology.procs import NGINX_CONF

    text = NGINX_CONF.read_text()
    assert text.count("upstream rakuda_gateway {") == 1
    assert len(re.findall(r"^\s*upstream\s", text, re.M)) == 1
    assert text.count("listen 8080;") == 1
    assert "proxy_buffering off;" in text and "$proxy_add_x_forwarded_for" in text


def test_events_arrive_through_nginx_within_the_window_plus_50ms(nginx, bus, settings):
    window = settings.debounce_window_ms / 1000
    delays = []
    with SSEClient(nginx.url + EVENTS, KEY) as client:
        assert client.status == 200 and client.headers.get("x-accel-buffering") is None  # nginx consumed it
        assert client.next(5).event == "connected"
        for i in range(7):
            time.sleep(window + 0.1)
            sent = time.time()
            bus.publish("orders", ev("ORDER_RECEIVED", f"o-{i}"))
            message = client.next_event(5)
            assert [e["payload"]["id"] for e in message.json["events"]] == [f"o-{i}"]
            delays.append(message.received_at - sent)
    # The median, on a 2-core machine shared with other test runs; every one within +250 ms.
    assert statistics.median(delays) <= window + 0.050, delays
    assert max(delays) <= window + 0.250, delays


def test_sigkill_of_one_gateway_costs_its_clients_nothing(nginx, two_gateways, bus):
    clients = [ResumingClient(nginx.url + EVENTS, KEY).start() for _ in range(6)]
    published: list[str] = []
    stop = threading.Event()

    def publish() -> None:
        i = 0
        while not stop.is_set():
            kind = ("inventory", "INVENTORY_CHANGE") if i % 2 else ("orders", "ORDER_RECEIVED")
            published.append(bus.publish(kind[0], ev(kind[1], f"e-{i}")))
            i += 1
            time.sleep(0.01)

    try:
        for c in clients:
            assert c.connected.wait(10), c.errors
        by_process = {c.process_id for c in clients}
        assert len(by_process) == 2, "nginx should spread the streams over both gateways"
        publisher = threading.Thread(target=publish)
        publisher.start()
        time.sleep(1.0)
        victim_process = clients[0].process_id
        victims = [c for c in clients if c.process_id == victim_process]
        victim_gateway = next(g for g in two_gateways if f":{g.proc.pid}:" in victim_process
                              or _worker_of(g, victim_process))
        sigkill_gateway(victim_gateway)
        killed_at = time.time()
        time.sleep(2.0)
        stop.set()
        publisher.join()
        deadline = time.time() + 15
        while time.time() < deadline and not all(set(published) <= c.got() for c in clients):
            time.sleep(0.1)
        for c in victims:
            assert c.process_id != victim_process and c.connections[-1].resumed, c.connections
            assert c.connections[-1].opened_at - killed_at < 5
        for c in clients:
            missing = set(published) - c.got()
            assert not missing, f"{len(missing)} of {len(published)} events lost: {sorted(missing)[:5]}"
            assert c.resets == []
    finally:
        stop.set()
        for c in clients:
            c.stop()


def _worker_of(gateway: GatewayServer, process_id: str) -> bool:
    from tests.topology.procs import children

    pid = int(process_id.split(":")[1])
    return gateway.proc is not None and pid in children(gateway.proc.pid)


def _get_from(source: str, nginx: Nginx, path: str, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection(nginx.host, nginx.port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_failure_limit_blocks_the_guesser_not_the_proxy(nginx, settings):
    guesser, operator = "127.0.0.2", "127.0.0.3"  # two client addresses, one proxy address
    statuses = [_get_from(guesser, nginx, "/api/realtime/status", {"X-API-Key": f"guess-{i}"})
                for i in range(settings.auth_max_failures)]
    assert statuses == [401] * settings.auth_max_failures  # counted per guesser, over both gateways
    # The other gateway learns the block from Redis: then both refuse the guesser (nginx takes turns).
    eventually(lambda: [_get_from(guesser, nginx, "/api/realtime/status", KEY) for _ in range(4)] == [429] * 4,
               timeout=5, what="the guesser refused by both gateways")
    for _ in range(4):  # both gateways, round robin
        assert _get_from(guesser, nginx, "/api/realtime/status", KEY) == 429
        assert _get_from(operator, nginx, "/api/realtime/status", KEY) == 200


def kill_and_resume_cycles(gateway_factory, bus, cycles: int, seed: int = 13) -> dict:
    """Kill the gateway a client is on, ``cycles`` times, with events published just before each kill.

    Returns counts: events published, events lost, resets, cycles, and the resume times.
    """
    rng = random.Random(seed)
    gateways = [gateway_factory(TRUSTED_PROXIES="1"), gateway_factory(TRUSTED_PROXIES="1")]
    proxy = Nginx([f"127.0.0.1:{g.port}" for g in gateways]).start()
    client = ResumingClient(proxy.url + EVENTS, KEY, retry_s=0.05).start()
    published: list[str] = []
    resume_s: list[float] = []
    try:
        assert client.connected.wait(10), client.errors
        for cycle in range(cycles):
            on = client.process_id
            victim = next(g for g in gateways if g.proc is not None and _worker_of(g, on))
            # Events of both channels in the last moments before the kill, some still in a window.
            for i in range(3):
                kind = ("orders", "ORDER_RECEIVED") if (cycle + i) % 2 else ("inventory", "INVENTORY_CHANGE")
                published.append(bus.publish(kind[0], ev(kind[1], f"c{cycle}-{i}")))
                time.sleep(rng.uniform(0, 0.1))
            time.sleep(rng.uniform(0, 0.3))
            connections = len(client.connections)
            killed_at = time.time()
            sigkill_gateway(victim)
            deadline = time.time() + 15
            while len(client.connections) == connections and time.time() < deadline:
                time.sleep(0.01)
            assert len(client.connections) > connections, f"cycle {cycle}: no reconnect; {client.errors[-3:]}"
            resume_s.append(client.connections[-1].opened_at - killed_at)
            victim.start()  # back for the next cycle: the client will be killed on the other one
        deadline = time.time() + 10
        while time.time() < deadline and not set(published) <= client.got():
            time.sleep(0.05)
        lost = set(published) - client.got()
        return {"cycles": cycles, "published": len(published), "lost": len(lost), "resets": len(client.resets),
                "lost_ids": sorted(lost)[:10], "resume_p50_s": statistics.median(resume_s),
                "resume_max_s": max(resume_s), "resumed_every_time": all(c.resumed for c in client.connections[1:])}
    finally:
        client.stop()
        proxy.stop()


def test_kill_and_resume_cycles_lose_nothing(gateway_factory, bus):
    # 6 in the suite (about 20 s): three kills on each gateway, each with events still in a window,
    # any of which loses events if a resume does; the 100-cycle figure in docs/deployment.md is
    # RAKUDA_KILL_CYCLES=100.
    cycles = int(os.environ.get("RAKUDA_KILL_CYCLES", "6"))
    result = kill_and_resume_cycles(gateway_factory, bus, cycles)
    print("kill-and-resume:", result)
    assert result["lost"] == 0 and result["resets"] == 0, result
    assert result["resumed_every_time"], result
