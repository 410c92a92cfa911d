"""Several hosts in network namespaces: Redis and PostgreSQL, two gateway hosts, a worker host, a client host.

Every event in these tests is a real order: a signed webhook POSTed from the client host to a
gateway host, stored in PostgreSQL on the db host, processed by the Celery worker on the worker
host, committed with its ORDER_RECEIVED and published through the outbox (tests/topology/hosts.py).
One deployment serves the whole module. Faults: a host's link set down, every packet of a host
dropped (nftables), packets between one host and Redis dropped.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg2
import pytest

from gateway.stream_session import kernel_give_up_ms
from tests.sse_client import SSEClient
from tests.topology.clients import ResumingClient
from tests.topology.hosts import HEARTBEAT_MS, KEY, SEND_TIMEOUT_MS, Deployment
from tests.topology.netns import netns_unavailable
from tests.waiting import eventually

_why_not = netns_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.topology, pytest.mark.skipif(_why_not is not None, reason=str(_why_not))]

REDIS_PORT = 6379
NOT_PUBLISHED = "committed but not published"


@pytest.fixture(scope="module")
def net():
    deployment = Deployment()
    try:
        try:
            deployment.start()
        except Exception as exc:
            raise RuntimeError(f"the deployment did not start: {exc}\n{deployment.tails()}") from exc
        yield deployment
    finally:
        deployment.stop()


def stream(net: Deployment, role: str, *fallbacks: str) -> ResumingClient:
    """A dashboard on the client host reading ``role``'s stream (then the ``fallbacks`` in turn)."""
    return ResumingClient(net.url(role) + "/api/realtime/events", KEY,
                          fallback_urls=tuple(net.url(f) + "/api/realtime/events" for f in fallbacks),
                          netns=net.topo.hosts["client"], read_timeout_s=3 * HEARTBEAT_MS / 1000).start()


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_a_stream_resumes_on_the_other_gateway_host_when_its_host_goes_away(net):
    client = stream(net, "gw1", "gw2")
    posted: list[str] = []
    stop = threading.Event()

    refused: list[str] = []

    def keep_ordering() -> None:  # the marketplace delivers to the host that stays
        while not stop.is_set():
            order_id = f"JO-away-{len(posted)}"
            try:
                net.post_order("gw2", order_id)
            except (AssertionError, OSError) as exc:
                refused.append(f"{order_id}: {exc}")
                return
            posted.append(order_id)
            time.sleep(0.1)

    ordering = threading.Thread(target=keep_ordering)
    try:
        assert client.connected.wait(15), client.errors
        assert client.connections[-1].url.startswith(net.url("gw1"))
        ordering.start()
        eventually(lambda: len(client.orders()) >= 3, timeout=30, what="the worker's first events on gw1")
        gone_at = time.time()
        net.topo.set_link("gw1", up=False)  # the host vanishes: no FIN, no RST
        eventually(lambda: client.connections[-1].url.startswith(net.url("gw2")), timeout=20, what="a stream on gw2")
        resumed_after = client.connections[-1].opened_at - gone_at
        time.sleep(1.0)
        stop.set()
        ordering.join()
        assert refused == []
        eventually(lambda: set(posted) <= set(client.orders()), timeout=30, what="every order's event on the client")
        assert client.connections[-1].resumed and client.resets == []
        print(f"host gone: resumed on the other gateway host after {resumed_after:.1f}s, "
              f"{len(posted)} orders processed by the worker, none lost")
    finally:
        stop.set()
        if ordering.is_alive():
            ordering.join()
        client.stop()
        net.topo.set_link("gw1", up=True)


def test_a_silent_client_host_has_every_stream_closed_within_the_timeout(net):
    before = net.get("gw1", "worker", "/api/realtime/status")["process"]
    pid = before["pid"]
    baseline_fds = open_fds(pid)

    def open_streams(n: int) -> list[tuple[SSEClient, str]]:
        out = []
        for _ in range(n):
            c = SSEClient(net.url("gw1") + "/api/realtime/events", KEY, timeout=5)
            hello = c.next(5)
            assert hello.event == "connected"
            out.append((c, hello.json["connectionId"]))
        return out

    opened = net.from_host("client", open_streams, 20)
    streams, ours = [c for c, _id in opened], {connection_id for _c, connection_id in opened}

    def listed() -> int:
        """This test's streams that the gateways list (an earlier test's may still be closing)."""
        return len(ours & {c["id"] for c in net.get("gw1", "worker", "/api/realtime/connections")["connections"]})

    try:
        eventually(lambda: listed() == 20, timeout=10, what="20 streams listed")
        net.post_order("gw2", "JO-silent-0")  # the streams carry a real event before the silence
        eventually(lambda: all(_next_order(s) for s in streams), timeout=30, what="the event on every stream")
        # One socket per stream (give or take a pooled Redis connection the process opened or closed meanwhile).
        assert open_fds(pid) >= baseline_fds + 20 - 2
        silent_at = time.time()
        net.topo.drop_all("client")  # its packets vanish: no FIN, no RST, nothing
        # The first unacknowledged heartbeat leaves up to one interval after the silence; the kernel
        # looks at its timeout when a retransmission timer fires, and those back off exponentially,
        # so it aborts between the timeout and twice it after that heartbeat; 2 s more for a busy machine.
        limit = (2 * kernel_give_up_ms(HEARTBEAT_MS, SEND_TIMEOUT_MS) + HEARTBEAT_MS) / 1000 + 2
        eventually(lambda: listed() == 0, timeout=limit, what="the silent client's streams closed")
        closed_after = time.time() - silent_at
        eventually(lambda: open_fds(pid) <= baseline_fds + 2,
                   timeout=5, what="the gateway's fds back to where they were")
        print(f"silent peer: 20 streams closed {closed_after:.1f}s after the client host went silent "
              f"(limit {limit:.0f}s); fds {open_fds(pid)} (baseline {baseline_fds})")
    finally:
        net.topo.heal("client")
        for s in streams:
            s.close()


def _next_order(client: SSEClient) -> bool:
    """True once ``client`` read an ORDER_RECEIVED message (heartbeats skipped)."""
    while True:
        message = client.next(10)
        if message.event == "ORDER_RECEIVED":
            return True


def test_a_partition_between_a_gateway_and_redis_keeps_heartbeats_and_loses_nothing(net):
    client = stream(net, "gw1")
    try:
        assert client.connected.wait(15), client.errors
        net.post_order("gw2", "JO-before-partition")
        eventually(lambda: "JO-before-partition" in client.orders(), timeout=30, what="an order before the partition")
        cut_at = time.time()
        net.topo.drop_port_between("gw1", "db", REDIS_PORT)  # gw1 still reaches PostgreSQL
        status = eventually(lambda: (s := net.get("gw1", "client", "/api/realtime/status", timeout=20))
                            and not s["redisReachable"] and s, timeout=30, what="status saying Redis is unreachable")
        unreachable_after = time.time() - cut_at
        assert status["redisError"]
        heartbeats = client.heartbeats
        during = [f"JO-during-{i}" for i in range(10)]
        for order_id in during:  # delivered to gw2; the worker still reaches Redis
            net.post_order("gw2", order_id)
        time.sleep(3 * HEARTBEAT_MS / 1000)
        assert client.heartbeats >= heartbeats + 2, "heartbeats stopped during the partition"
        assert len(client.connections) == 1 and not (set(during) & set(client.orders()))
        healed_at = time.time()
        net.topo.heal("gw1")
        eventually(lambda: set(during) <= set(client.orders()), timeout=30, what="orders placed during the partition")
        delivered_after = time.time() - healed_at
        assert len(client.connections) == 1 and client.resets == []  # same stream, no restart
        eventually(lambda: net.get("gw1", "client", "/api/realtime/status")["redisReachable"],
                   timeout=15, what="status healed")
        print(f"gateway partition: status said unreachable {unreachable_after:.1f}s after the cut; orders of "
              f"the partition delivered {delivered_after:.1f}s after the heal on the same stream")
    finally:
        net.topo.heal("gw1")
        client.stop()


def test_a_partition_between_the_worker_and_redis_delays_its_events_through_the_outbox(net):
    client = stream(net, "gw2")
    worker = net.topo.addresses["worker"]
    lock: psycopg2.extensions.connection | None = None
    try:
        assert client.connected.wait(15), client.errors
        # An operator's transaction holds the orders table, so both worker processes take a delivery
        # and wait inside their transactions; Redis goes away from the worker while they wait.
        lock = net.from_host("client", psycopg2.connect, net.pg.url, connect_timeout=5)
        with lock.cursor() as cursor:
            cursor.execute("LOCK TABLE orders IN EXCLUSIVE MODE")
        held = [f"JO-held-{i}" for i in range(2)]
        for order_id in held:
            net.post_order("gw2", order_id)
        eventually(lambda: net.sql(f"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   f"AND client_addr = '{worker}'")[0][0] == len(held),
                   timeout=30, what="both deliveries waiting in the worker")
        unpublished_before = net.log("worker").count(NOT_PUBLISHED)
        net.topo.drop_port_between("worker", "db", REDIS_PORT)  # PostgreSQL still answers the worker
        cut_at = time.time()
        lock.rollback()  # the orders commit now, with their events in the outbox
        eventually(lambda: net.log("worker").count(NOT_PUBLISHED) >= unpublished_before + len(held),
                   timeout=60, what="the worker's post-commit publish refused")
        refused_after = time.time() - cut_at
        assert net.sql("SELECT count(*) FROM outbox_unsent")[0][0] == len(held)
        assert net.sql("SELECT count(*) FROM orders WHERE marketplace_order_id LIKE 'JO-held-%'")[0][0] == len(held)
        assert not set(held) & set(client.orders())
        healed_at = time.time()
        net.topo.heal("worker")
        eventually(lambda: set(held) <= set(client.orders()), timeout=60, what="the held orders' events after the heal")
        relayed_after = time.time() - healed_at
        eventually(lambda: net.sql("SELECT count(*) FROM outbox_unsent")[0][0] == 0,
                   timeout=30, what="the outbox emptied")
        assert client.resets == [] and len(client.connections) == 1
        net.post_order("gw2", "JO-after-heal")  # and the worker takes new deliveries again
        eventually(lambda: "JO-after-heal" in client.orders(), timeout=60, what="a new order after the heal")
        print(f"worker partition: post-commit publish refused {refused_after:.1f}s after the cut; the relay "
              f"delivered the {len(held)} events {relayed_after:.1f}s after the heal")
    finally:
        if lock is not None:
            lock.close()
        net.topo.heal("worker")
        client.stop()
