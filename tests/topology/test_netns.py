"""Several hosts in network namespaces: Redis, two gateway hosts, a worker host, a client host.

    db 10.213.0.10 (redis-server)    gw1 .11, gw2 .12 (gunicorn + gevent gateways)
    worker .13 (publishes events over the network)    client .14 (the dashboards' streams)

all on one bridge in a namespace of its own. Faults: a host's link set down, every packet of a
host dropped (nftables), packets between one gateway and Redis dropped.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from shared.config import Settings
from shared.event_bus import EventBus
from shared.exceptions import PublishError
from shared.realtime import RealTimeEvent
from tests.servers import ROOT, procfile_command
from tests.sse_client import SSEClient
from tests.topology.clients import ResumingClient
from tests.topology.netns import Topology, enter_netns, netns_unavailable

_why_not = netns_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.topology, pytest.mark.skipif(_why_not is not None, reason=str(_why_not))]

KEY = {"X-API-Key": "test-key"}
HEARTBEAT_MS, SEND_TIMEOUT_MS = 1000, 2000
GATEWAY_ENV = {
    "API_KEYS": "test-key", "ADMIN_API_KEYS": "test-key", "SECRET_KEY": "test-secret",
    "SSE_HEARTBEAT_INTERVAL": str(HEARTBEAT_MS),
    "SSE_SEND_TIMEOUT": str(SEND_TIMEOUT_MS), "SSE_DEBOUNCE_WINDOW": "100", "REALTIME_REPORT_INTERVAL": "0.5",
    "WEB_CONCURRENCY": "1", "PORT": "5000", "ACCESS_LOG": "-",
}


class Net:
    """The running topology: its hosts, and a thread pool per host to act from it."""

    def __init__(self) -> None:
        self.topo = Topology().create(["db", "gw1", "gw2", "worker", "client"])
        self.logs = Path(tempfile.mkdtemp(prefix="rakuda-netns-"))
        self.at = {role: ThreadPoolExecutor(max_workers=4, initializer=enter_netns, initargs=(ns,))
                   for role, ns in self.topo.hosts.items()}
        self.redis_url = f"redis://{self.topo.addresses['db']}:6379/0"

    def url(self, role: str) -> str:
        return f"http://{self.topo.addresses[role]}:5000"

    def start(self) -> Net:
        redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.topo.spawn("db", [redis_server, "--bind", self.topo.addresses["db"], "--port", "6379",
                               "--protected-mode", "no", "--save", "", "--appendonly", "no",
                               "--dir", str(self.logs)], str(self.logs / "redis.log"))
        for role in ("gw1", "gw2"):
            env = {**GATEWAY_ENV, "HOST": self.topo.addresses[role], "REDIS_URL": self.redis_url,
                   "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT)}
            self.topo.spawn(role, procfile_command("web"), str(self.logs / f"{role}.log"), cwd=ROOT, env=env)
        for role in ("gw1", "gw2"):
            self.from_host("client", wait_healthy, self.url(role))
        settings = Settings.from_env({"REDIS_URL": self.redis_url, "API_KEYS": "test-key"})
        self.bus = EventBus()
        self.from_host("worker", self.bus.initialize, settings)
        return self

    def from_host(self, role: str, fn, *args, **kwargs):
        return self.at[role].submit(fn, *args, **kwargs).result(timeout=120)

    def publish(self, ident: str, deadline_s: float = 60.0) -> str:
        """From the worker host, retried like the outbox relay retries."""
        deadline = time.time() + deadline_s
        while True:
            try:
                return self.from_host("worker", self.bus.publish, "orders",
                                      RealTimeEvent.create("ORDER_RECEIVED", ident, "created", None))
            except PublishError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def get(self, role: str, from_role: str, path: str, timeout: float = 10) -> dict:
        return self.from_host(from_role, lambda: requests.get(self.url(role) + path, headers=KEY,
                                                              timeout=timeout).json())

    def stop(self) -> None:
        try:
            self.from_host("worker", self.bus.close)
        finally:
            for pool in self.at.values():
                pool.shutdown(wait=False, cancel_futures=True)
            self.topo.destroy()
            shutil.rmtree(self.logs, ignore_errors=True)


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url + "/api/health", timeout=1).json().get("redisReachable"):
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy")


@pytest.fixture(scope="module")
def net():
    network = Net()
    try:
        network.start()
        yield network
    finally:
        network.stop()


def wait(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_a_stream_resumes_on_the_other_gateway_host_when_its_host_goes_away(net):
    client = ResumingClient(net.url("gw1") + "/api/realtime/events", KEY,
                            fallback_urls=(net.url("gw2") + "/api/realtime/events",),
                            netns=net.topo.hosts["client"], read_timeout_s=3 * HEARTBEAT_MS / 1000).start()
    published: list[str] = []
    stop = threading.Event()

    def keep_publishing() -> None:
        i = 0
        while not stop.is_set():
            published.append(net.publish(f"away-{i}"))
            i += 1
            time.sleep(0.05)

    publisher = threading.Thread(target=keep_publishing)
    try:
        assert client.connected.wait(15), client.errors
        assert client.connections[-1].url.startswith(net.url("gw1"))
        publisher.start()
        time.sleep(1.0)
        gone_at = time.time()
        net.topo.set_link("gw1", up=False)  # the host vanishes: no FIN, no RST
        wait(lambda: client.connections[-1].url.startswith(net.url("gw2")), 20, "a stream on gw2")
        resumed_after = client.connections[-1].opened_at - gone_at
        time.sleep(1.0)
        stop.set()
        publisher.join()
        wait(lambda: set(published) <= client.got(), 15, "every event on the client")
        assert client.connections[-1].resumed and client.resets == []
        print(f"host gone: resumed on the other gateway host after {resumed_after:.1f}s, "
              f"{len(published)} events, none lost")
    finally:
        stop.set()
        client.stop()
        net.topo.set_link("gw1", up=True)


def test_a_silent_client_host_has_every_stream_closed_within_the_timeout(net):
    before = net.get("gw1", "worker", "/api/realtime/status")["process"]
    pid = before["pid"]
    baseline_streams, baseline_fds = before["activeConnections"], open_fds(pid)

    def open_streams(n: int) -> list[SSEClient]:
        out = []
        for _ in range(n):
            c = SSEClient(net.url("gw1") + "/api/realtime/events", KEY, timeout=5)
            assert c.next(5).event == "connected"
            out.append(c)
        return out

    streams = net.from_host("client", open_streams, 20)
    try:
        wait(lambda: net.get("gw1", "worker", "/api/realtime/connections")["total"] >= baseline_streams + 20,
             10, "20 streams listed")
        # One socket per stream (give or take a pooled Redis connection the process opened or closed meanwhile).
        assert open_fds(pid) >= baseline_fds + 20 - 2
        silent_at = time.time()
        net.topo.drop_all("client")  # its packets vanish: no FIN, no RST, nothing
        limit = max(HEARTBEAT_MS, SEND_TIMEOUT_MS) / 1000 + 5
        wait(lambda: net.get("gw1", "worker", "/api/realtime/connections")["total"] <= baseline_streams,
             limit, "the silent client's streams closed")
        closed_after = time.time() - silent_at
        wait(lambda: open_fds(pid) <= baseline_fds + 2, 5, "the gateway's fds back to where they were")
        print(f"silent peer: 20 streams closed {closed_after:.1f}s after the client host went silent "
              f"(limit {limit:.0f}s); fds {open_fds(pid)} (baseline {baseline_fds})")
    finally:
        net.topo.heal("client")
        for s in streams:
            s.close()


def test_a_partition_between_a_gateway_and_redis_keeps_heartbeats_and_loses_nothing(net):
    client = ResumingClient(net.url("gw1") + "/api/realtime/events", KEY, netns=net.topo.hosts["client"],
                            read_timeout_s=3 * HEARTBEAT_MS / 1000).start()
    try:
        assert client.connected.wait(15), client.errors
        first = net.publish("before-partition")
        wait(lambda: first in client.got(), 10, "an event before the partition")
        cut_at = time.time()
        net.topo.drop_between("gw1", "db")
        status = wait(lambda: (s := net.get("gw1", "client", "/api/realtime/status", timeout=20))
                      and not s["redisReachable"] and s, 30, "status saying Redis is unreachable")
        unreachable_after = time.time() - cut_at
        assert status["redisError"]
        heartbeats = client.heartbeats
        during = [net.publish(f"during-{i}") for i in range(20)]  # the worker still reaches Redis
        time.sleep(3 * HEARTBEAT_MS / 1000)
        assert client.heartbeats >= heartbeats + 2, "heartbeats stopped during the partition"
        assert len(client.connections) == 1 and not (set(during) & client.got())
        healed_at = time.time()
        net.topo.heal("gw1")
        wait(lambda: set(during) <= client.got(), 30, "events published during the partition")
        delivered_after = time.time() - healed_at
        assert len(client.connections) == 1 and client.resets == []  # same stream, no restart
        wait(lambda: net.get("gw1", "client", "/api/realtime/status")["redisReachable"], 15, "status healed")
        print(f"partition: status said unreachable {unreachable_after:.1f}s after the cut; events of the "
              f"partition delivered {delivered_after:.1f}s after the heal on the same stream")
    finally:
        net.topo.heal("gw1")
        client.stop()

