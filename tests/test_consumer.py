"""Durable consumer groups on the history: every event acknowledged only after its handler."""

from __future__ import annotations

import json
import threading

import redis

from shared.constants import HISTORY_STREAM
from shared.consumer import Consumer, dead_key, group_status
from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent
from tests.waiting import eventually


def order(n: int) -> RealTimeEvent:
    return RealTimeEvent.create("ORDER_RECEIVED", n, "created", {"n": n})


def run_in_thread(consumer: Consumer) -> threading.Thread:
    t = threading.Thread(target=consumer.run, kwargs={"block_ms": 100}, daemon=True)
    t.start()
    return t


def test_two_groups_each_see_every_event_and_members_of_one_group_share(bus: EventBus, redis_client):
    seen: dict[str, list[str]] = {"a1": [], "a2": [], "b": []}
    consumers = [bus.consumer("a", lambda e, k=k: seen[k].append(e.payload.id), name=k) for k in ("a1", "a2")]
    consumers.append(bus.consumer("b", lambda e: seen["b"].append(e.payload.id), name="b"))
    threads = [run_in_thread(c) for c in consumers]
    ids = bus.publish_many("orders", [order(i) for i in range(300)])
    eventually(lambda: len(seen["b"]) == 300 and len(seen["a1"]) + len(seen["a2"]) == 300, timeout=30,
               what="both groups")
    for c in consumers:
        c.stop()
    for t in threads:
        t.join(5)
    assert seen["b"] == [str(i) for i in range(300)]
    assert sorted(seen["a1"] + seen["a2"], key=int) == [str(i) for i in range(300)]  # none twice
    status = {g["group"]: g for g in group_status(redis_client)}
    assert status["a"]["pending"] == status["b"]["pending"] == 0
    assert status["a"]["lag"] == 0 and status["b"]["lastDeliveredId"] == ids[-1]


def test_types_filter_and_start_from_the_whole_history(bus: EventBus):
    bus.publish_many("orders", [order(1), order(2)])
    bus.publish("inventory", RealTimeEvent.create("INVENTORY_CHANGE", 5, "updated", {"isAvailable": False}))
    got: list[str] = []
    c = bus.consumer("inv", got.append, types=["INVENTORY_CHANGE"], start="0")
    c.handle(c.poll(block_ms=100))
    assert [e.type.value for e in got] == ["INVENTORY_CHANGE"]  # type: ignore[attr-defined]
    c.redis.close()


def test_an_entry_is_acked_only_after_the_handler_and_a_dead_members_entries_are_taken_over(bus: EventBus,
                                                                                          redis_client):
    settings = type(bus.settings).from_env({**bus.settings.env_items(), "CONSUMER_CLAIM_AFTER": "0.5"})
    client = redis.Redis.from_url(settings.redis_url)
    crashed = Consumer(client, settings, "g", name="crashed")
    bus.publish_many("orders", [order(i) for i in range(5)])
    taken = crashed.poll(block_ms=100)  # read, then "dies" before its handler returned
    assert len(taken) == 5
    assert redis_client.xpending(HISTORY_STREAM, "g")["pending"] == 5
    got: list[str] = []
    survivor = Consumer(client, settings, "g", lambda e: got.append(e.payload.id), name="survivor")
    survivor.handle(survivor.poll(block_ms=50))
    assert got == []  # not idle long enough yet
    # Idle for CONSUMER_CLAIM_AFTER (0.5 s): the survivor claims them at its next poll.
    eventually(lambda: survivor.handle(survivor.poll(block_ms=50)) or got, timeout=5, what="the claim")
    assert got == ["0", "1", "2", "3", "4"]
    assert redis_client.xpending(HISTORY_STREAM, "g")["pending"] == 0
    # A restarted member with its old name takes back its own pending entries first.
    bus.publish("orders", order(9))
    crashed.poll(block_ms=100)
    again = Consumer(client, settings, "g", name="crashed").poll(block_ms=10)
    assert [e.event.payload.id for e in again if e.event] == ["9"]
    client.close()


def test_a_failing_entry_is_retried_then_dead_lettered(bus: EventBus, redis_client):
    settings = type(bus.settings).from_env({**bus.settings.env_items(), "CONSUMER_CLAIM_AFTER": "0.2",
                                            "CONSUMER_MAX_DELIVERIES": "3"})
    client = redis.Redis.from_url(settings.redis_url)
    calls: list[str] = []

    def handler(e: RealTimeEvent) -> None:
        calls.append(e.payload.id)
        if e.payload.id == "13":
            raise RuntimeError("cannot handle 13")

    c = Consumer(client, settings, "flaky", handler, name="one")
    bus.publish_many("orders", [order(12), order(13), order(14)])

    def dead_lettered() -> int:
        c.handle(c.poll(block_ms=50))
        return redis_client.llen(dead_key("flaky"))

    eventually(dead_lettered, 10, what="order 13 dead-lettered")
    assert calls.count("13") == 3 and calls.count("12") == calls.count("14") == 1
    record = json.loads(redis_client.lindex(dead_key("flaky"), 0))
    assert record["event"]["payload"]["id"] == "13" and "cannot handle 13" in record["error"]
    assert record["deliveries"] == 3
    assert redis_client.xpending(HISTORY_STREAM, "flaky")["pending"] == 0
    assert {g["group"]: g for g in group_status(redis_client)}["flaky"]["dead"] == 1
    client.close()


def test_entries_trimmed_before_ack_are_counted_as_lost_and_logged(bus: EventBus, redis_client, caplog):
    settings = type(bus.settings).from_env({**bus.settings.env_items(), "CONSUMER_CLAIM_AFTER": "0"})
    client = redis.Redis.from_url(settings.redis_url)
    a = Consumer(client, settings, "slow", name="a")
    bus.publish_many("orders", [order(i) for i in range(4)])
    assert len(a.poll(block_ms=50)) == 4
    redis_client.xtrim(HISTORY_STREAM, maxlen=1, approximate=False)  # the history is capped: the 3 oldest go
    got: list[str] = []
    b = Consumer(client, settings, "slow", lambda e: got.append(e.payload.id), name="b")
    with caplog.at_level("ERROR"):
        b.handle(b.poll(block_ms=50))
    assert got == ["3"]
    assert "lost" in caplog.text
    assert {g["group"]: g for g in group_status(redis_client)}["slow"]["lost"] == 3
    assert redis_client.xpending(HISTORY_STREAM, "slow")["pending"] == 0
    client.close()


def test_status_route_shows_each_group(gateway, bus: EventBus):
    import requests

    c = bus.consumer("dash", lambda e: None, name="x")
    bus.publish_many("orders", [order(1), order(2)])
    body = requests.get(gateway.url + "/api/realtime/status", headers={"X-API-Key": "test-key"}, timeout=10).json()
    group = {g["group"]: g for g in body["consumerGroups"]}["dash"]
    assert group["lag"] == 2 and group["pending"] == 0 and group["dead"] == 0
    c.redis.close()


def test_a_worker_that_has_not_read_yet_reports_redis_by_a_ping_and_lists_the_groups(bus: EventBus, settings):
    """Status asked of a process whose reader has not run yet (a worker just started) is not "unreachable"."""
    from gateway.app import create_app
    from gateway.services import services_of

    c = bus.consumer("early", lambda e: None, name="x")
    bus.publish_many("orders", [order(1)])
    app = create_app(settings)  # never started: its reader has made no attempt
    try:
        body = app.test_client().get("/api/realtime/status", headers={"X-API-Key": "test-key"}).json
        assert body["redisReachable"] is True and body["redisError"] == ""
        assert {g["group"]: g["lag"] for g in body["consumerGroups"]} == {"early": 1}
        assert body["process"]["redisReachable"] is False  # the reader's own view: it has not read
    finally:
        services_of(app).close()
        c.redis.close()


def test_a_restarted_member_takes_back_all_its_own_pending_entries_once_each(bus: EventBus, redis_client):
    client = redis.Redis.from_url(bus.settings.redis_url)
    crashed = Consumer(client, bus.settings, "own", name="same")
    bus.publish_many("orders", [order(i) for i in range(250)])
    while sum(p["pending"] for p in [redis_client.xpending(HISTORY_STREAM, "own")]) < 250:
        crashed.poll(count=100, block_ms=50)  # read, never handled: the process "dies"
    restarted = Consumer(client, bus.settings, "own", name="same")
    polls = [restarted.poll(count=100, block_ms=10) for _ in range(4)]
    assert [len(p) for p in polls] == [100, 100, 50, 0]  # no entry handed out twice while still pending
    ids = [e.event.payload.id for p in polls for e in p if e.event]
    assert ids == [str(i) for i in range(250)]
    client.close()
