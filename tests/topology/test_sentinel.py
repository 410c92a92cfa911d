"""Redis Sentinel: one primary, one replica, three sentinels; the primary dies mid-stream."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from shared import task_names
from shared.config import Settings
from shared.exceptions import PublishError
from shared.models import Product
from shared.realtime import RealTimeEvent
from tests.sse_client import SSEClient
from tests.topology.clients import ResumingClient
from tests.topology.redis_ha import MASTER_NAME, RedisHA
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.topology,
              pytest.mark.skipif(shutil.which("redis-sentinel") is None, reason="Debian's redis-sentinel is missing")]

KEY = {"X-API-Key": "test-key"}


@pytest.fixture
def ha():
    cluster = RedisHA().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def settings(ha: RedisHA) -> Settings:
    """The test settings, on the Sentinel-managed Redis (REDIS_URL gives only the database)."""
    return Settings.from_env({
        "REDIS_URL": f"redis://127.0.0.1:{ha.primary_port}/0",
        "REDIS_SENTINELS": ha.sentinels,
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
        "API_KEYS": "test-key", "SECRET_KEY": "test-secret",
        "SSE_HEARTBEAT_INTERVAL": "1000", "SSE_DEBOUNCE_WINDOW": "100", "REALTIME_REPORT_INTERVAL": "0.2",
        "CELERY_VISIBILITY_TIMEOUT": "10",
    })


def ev(ident: str) -> RealTimeEvent:
    return RealTimeEvent.create("ORDER_RECEIVED", ident, "created", None)


def publish_retrying(bus, ident: str, deadline_s: float = 30.0) -> str:
    """Publish like the outbox relay does: a publish Redis did not take is tried again."""
    deadline = time.time() + deadline_s
    while True:
        try:
            return bus.publish("orders", ev(ident))
        except PublishError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def product_available(runtime, product_id: int) -> bool:
    with runtime.db.transaction() as session:
        return session.scalars(select(Product).where(Product.id == product_id)).one().is_available


def test_publishing_streaming_and_tasks_continue_through_a_failover(
        ha, settings, gateway_factory, bus, celery_app, worker, catalogue, supplier, runtime, caplog):
    gateway = gateway_factory()
    live = ResumingClient(f"{gateway.url}/api/realtime/events", KEY).start()
    try:
        assert live.connected.wait(10), live.errors
        status = gateway_status(gateway)
        assert status["redisMaxmemoryPolicy"] == "noeviction" and status["redisSentinel"]["master"] == MASTER_NAME
        before = [publish_retrying(bus, f"before-{i}") for i in range(5)]
        eventually(lambda: set(before) <= live.got(), what="events before the failover")
        # A client that resumes across the failover: away from now until after it.
        with SSEClient(f"{gateway.url}/api/realtime/events", KEY) as away:
            assert away.next(5).event == "connected"
            away.next(5)  # a heartbeat: its cursor is after `before`
            away_id = away.last_id

        published: list[str] = []
        stop = threading.Event()

        def keep_publishing() -> None:
            i = 0
            while not stop.is_set():
                published.append(publish_retrying(bus, f"during-{i}"))
                i += 1
                time.sleep(0.02)

        publisher = threading.Thread(target=keep_publishing)
        publisher.start()
        time.sleep(0.5)
        killed_at = time.time()
        ha.kill(ha.primary_port)
        failover_s = ha.wait_for_failover()
        time.sleep(1.0)
        stop.set()
        publisher.join()
        healed = eventually(lambda: set(published) <= live.got() and time.time(), timeout=30,
                          what="every event published around the failover on the open stream")
        # A task through the Celery broker, which now is the new primary.
        product_id = catalogue(1, listed=False)[0]
        with runtime.db.transaction() as session:
            source_item = session.get(Product, product_id).source_item_id
        supplier.items[("MERCARI", source_item)]["available"] = False
        celery_app.send_task(task_names.INVENTORY_CHECK_BATCH, args=[[product_id]])
        eventually(lambda: not product_available(runtime, product_id), timeout=30, what="task run after failover")

        new_primary = ha.client(ha.replica_port)
        history = [entry_id for entry_id, _ in new_primary.xrange("rakuda:realtime:history")]
        with SSEClient(f"{gateway.url}/api/realtime/events", {**KEY, "Last-Event-ID": away_id}) as back:
            connected = back.next(5)
            got: list[str] = []
            reset = False
            deadline = time.time() + 10
            while time.time() < deadline and not set(published) <= set(got):
                msg = back.next(5)
                if msg.event == "reset":
                    reset = True
                    break
                if msg.event not in ("heartbeat",):
                    got += [e["id"] for e in msg.json["events"]]
        after_cursor = [i for i in history if i > away_id.split(":", 1)[1]]
        if reset:  # allowed only if the failover lost events we had read
            assert set(published) - set(history), "a reset although the new primary has every event"
        else:
            assert connected.json["resumed"] is True
            assert set(published) <= set(got) and set(published) <= set(after_cursor)
        assert live.resets == []
        print(f"failover: sentinels promoted the replica in {failover_s:.1f}s; open stream whole again "
              f"{healed - killed_at:.1f}s after the kill; {len(published)} events published around it")
    finally:
        live.stop()


def gateway_status(gateway) -> dict:
    import requests

    return requests.get(gateway.url + "/api/realtime/status", headers=KEY, timeout=10).json()


def test_a_failover_that_lost_events_is_a_reset_for_resuming_clients_never_a_gap(ha, settings, gateway_factory, bus):
    gateway = gateway_factory()
    with SSEClient(f"{gateway.url}/api/realtime/events", KEY) as client:
        assert client.next(5).event == "connected"
        first = publish_retrying(bus, "replicated")
        eventually(lambda: ha.client(ha.replica_port).xlen("rakuda:realtime:history") == 1, what="replicated")
        message = client.next_event(5)
        assert [e["id"] for e in message.json["events"]] == [first]
        resume_from = client.last_id
    ha.pause(ha.replica_port)  # the replica stops taking the primary's writes...
    ha.client(ha.primary_port).client_kill_filter(_type="replica")  # (its link closed before they are sent)
    live = ResumingClient(f"{gateway.url}/api/realtime/events", KEY).start()
    try:
        assert live.connected.wait(10)
        lost = [publish_retrying(bus, f"lost-{i}") for i in range(3)]
        eventually(lambda: set(lost) <= live.got(), what="the gateway read and delivered them")
        ha.kill(ha.primary_port)  # ...and the primary that had them dies
        ha.resume(ha.replica_port)
        ha.wait_for_failover()
        assert ha.client(ha.replica_port).xlen("rakuda:realtime:history") == 1  # they are gone
        after = publish_retrying(bus, "after-failover")
        eventually(lambda: after in live.got(), timeout=30, what="the open stream goes on on the new primary")
    finally:
        live.stop()
    with SSEClient(f"{gateway.url}/api/realtime/events", {**KEY, "Last-Event-ID": resume_from}) as back:
        connected = back.next(5)
        assert connected.json["resumed"] is False
        assert back.next(5).event == "reset"


@pytest.mark.parametrize("taken", ["primary", "sentinel"])
def test_a_port_another_process_took_first_is_left_to_it_and_the_cluster_starts_on_others(taken: str) -> None:
    cluster = RedisHA()
    port = cluster.primary_port if taken == "primary" else cluster.sentinel_ports[1]
    with socket.socket() as squatter:  # listens there, and answers nothing
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            cluster.start()
            assert port not in [cluster.primary_port, cluster.replica_port, *cluster.sentinel_ports]
            assert cluster.master_port() == cluster.primary_port
        finally:
            cluster.stop()


def test_a_sentinel_given_the_primarys_port_is_caught_and_the_cluster_starts_on_other_ports(monkeypatch) -> None:
    from tests.topology import redis_ha

    real_free_ports = redis_ha.free_ports
    primary, replica, first, _, third = real_free_ports(5)
    choices = [[primary, replica, first, primary, third]]  # the first choice; then real ones
    monkeypatch.setattr(redis_ha, "free_ports", lambda n: choices.pop() if choices else real_free_ports(n))
    cluster = RedisHA()
    assert cluster.sentinel_ports[1] == cluster.primary_port  # as two calls of free_port() once chose
    try:
        cluster.start()
        ports = [cluster.primary_port, cluster.replica_port, *cluster.sentinel_ports]
        assert len(set(ports)) == 5
        assert cluster.master_port() == cluster.primary_port
        assert all(cluster._sees_replica(p) for p in cluster.sentinel_ports)
    finally:
        cluster.stop()


def test_a_cluster_that_cannot_start_leaves_no_server_running(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.topology import redis_ha

    started: list[int] = []
    real_popen, real_eventually = subprocess.Popen, redis_ha.eventually

    def recording_popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc.pid)
        return proc

    monkeypatch.setattr(redis_ha.subprocess, "Popen", recording_popen)
    monkeypatch.setattr(redis_ha.RedisHA, "_sees_replica", lambda self, port: False)  # never ready...
    monkeypatch.setattr(redis_ha, "eventually", lambda holds, timeout, what: real_eventually(holds, 0.5, what=what))
    cluster = RedisHA()
    with pytest.raises(AssertionError, match="sentinels see the replica"):  # ...so the start fails
        cluster.start()
    assert len(started) == 5
    assert not any(Path(f"/proc/{pid}").exists() for pid in started)
    assert not cluster.dir.exists()
