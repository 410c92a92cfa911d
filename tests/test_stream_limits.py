"""Bounded resumes and per-client stream limits on a real gateway (two worker processes where it matters)."""

from __future__ import annotations

import time

import redis
import requests

from shared.constants import HISTORY_EPOCH
from shared.realtime import RealTimeEvent
from tests.sse_client import SSEClient
from tests.waiting import eventually

EVENTS = "/api/realtime/events"
KEY = {"X-API-Key": "test-key"}


def ev(ident: str) -> RealTimeEvent:
    return RealTimeEvent.create("LISTING_UPDATE", ident, "updated", {"n": ident})


def cursor(redis_url: str, bus_id: str) -> str:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return f"{client.get(HISTORY_EPOCH)}:{bus_id}"
    finally:
        client.close()


def refused(server, headers: dict[str, str], query: str = "") -> dict:
    """Open a stream that must be refused with 429; its JSON body."""
    response = requests.get(server.url + EVENTS + query, headers=headers, timeout=10, stream=True)
    try:
        assert response.status_code == 429, response.status_code
        assert response.headers["content-type"].startswith("application/json")
        assert int(response.headers["Retry-After"]) >= 1
        body = response.json()
        assert body["status"] == 429
        return body
    finally:
        response.close()


def opened(server, headers: dict[str, str], query: str = "") -> SSEClient:
    client = SSEClient(server.url + EVENTS + query, headers)
    assert client.status == 200, client.body(2)
    assert client.next(10).event == "connected"
    return client


def read_until(client: SSEClient, payload_id: str) -> list:
    """The messages other than heartbeats up to the one carrying ``payload_id`` (inclusive)."""
    got = []
    while True:
        message = client.next_event(10)
        got.append(message)
        if payload_id in [e["payload"]["id"] for e in message.json.get("events", [])]:
            return got


def test_a_resume_too_far_behind_gets_reset_not_a_replay(gateway_factory, bus, redis_url):
    server = gateway_factory(REALTIME_REPLAY_MAX_EVENTS="50")
    with opened(server, KEY, "?channels=listings") as watcher:
        first = bus.publish("listings", ev("first"))
        ids = bus.publish_many("listings", [ev(f"n-{i}") for i in range(80)])
        assert ids and all(ids)
        read_until(watcher, "n-79")  # the debounce windows have passed: nothing is held to come live

    # 80 events behind (the history still holds them all): reset, and nothing replayed.
    with SSEClient(server.url + EVENTS, {**KEY, "Last-Event-ID": cursor(redis_url, first)}) as client:
        assert client.next(5).json["resumed"] is False
        reset = client.next(5)
        assert reset.event == "reset" and "REALTIME_REPLAY_MAX_EVENTS" in reset.json["reason"]
        bus.publish("listings", ev("marker"))  # published after the reset: the first event to come
        got = read_until(client, "marker")
        assert [(m.event, [e["payload"]["id"] for e in m.json["events"]]) for m in got] == [
            ("LISTING_UPDATE", ["marker"])]
    # A made-up cursor at the start of the history is no way round it.
    epoch = cursor(redis_url, "0-0")
    with SSEClient(server.url + EVENTS, {**KEY, "Last-Event-ID": epoch}) as client:
        assert client.next(5).json["resumed"] is False
        assert client.next(5).event == "reset"
    # 31 behind (n-50 .. n-79 and the marker): within the bound, replayed in full.
    with SSEClient(server.url + EVENTS, {**KEY, "Last-Event-ID": cursor(redis_url, ids[49])}) as client:
        assert client.next(5).json["resumed"] is True
        replayed = []
        while len(replayed) < 31:
            message = client.next_event(5)
            replayed += [e["payload"]["id"] for e in message.json["events"]]
        assert replayed == [f"n-{i}" for i in range(50, 80)] + ["marker"]
    # Exactly at the bound (n-31 .. n-79 and the marker: 50) still replays.
    with SSEClient(server.url + EVENTS, {**KEY, "Last-Event-ID": cursor(redis_url, ids[30])}) as client:
        assert client.next(5).json["resumed"] is True


def test_open_streams_per_key_are_limited_across_processes_and_tokens_count(gateway_factory):
    server = gateway_factory(workers=2, API_KEYS="test-key,other-key", SSE_MAX_STREAMS_PER_KEY="3")
    token = requests.post(server.url + "/api/realtime/token", headers=KEY, timeout=10).json()["token"]
    streams = [opened(server, KEY) for _ in range(2)] + [opened(server, {}, f"?token={token}")]
    try:
        # The cluster's count is the sum of the processes' reports (every REALTIME_REPORT_INTERVAL).
        eventually(lambda: requests.get(server.url + "/api/realtime/status", headers=KEY, timeout=10).json()[
            "activeConnections"] == 3, timeout=5, what="3 streams in the cluster's count")
        assert refused(server, KEY)["limit"] == "SSE_MAX_STREAMS_PER_KEY"
        assert refused(server, {}, f"?token={token}")["limit"] == "SSE_MAX_STREAMS_PER_KEY"
        assert refused(server, {"Authorization": "Bearer test-key"})["limit"] == "SSE_MAX_STREAMS_PER_KEY"
        # Another key is not held back by this one.
        other = opened(server, {"X-API-Key": "other-key"})
        other.close()
        # A stream that ends gives its place back.
        streams.pop().close()
        def opens() -> bool:
            with requests.get(server.url + EVENTS, headers=KEY, timeout=10, stream=True) as response:
                return response.status_code == 200

        eventually(opens, timeout=5, interval=0.1, what="a stream of that key opening again")
    finally:
        for s in streams:
            s.close()


def test_open_streams_per_address_are_limited_and_ipv6_counts_per_64(gateway_factory):
    server = gateway_factory(workers=2, TRUSTED_PROXIES="1", SSE_MAX_STREAMS_PER_ADDRESS="2")
    a = {**KEY, "X-Forwarded-For": "203.0.113.7"}
    v6 = [{**KEY, "X-Forwarded-For": f"2001:db8:0:7::{n}"} for n in (1, 2, 3)]
    streams = [opened(server, a), opened(server, a), opened(server, v6[0]), opened(server, v6[1])]
    try:
        body = refused(server, a)
        assert body["limit"] == "SSE_MAX_STREAMS_PER_ADDRESS" and "SSE_MAX_STREAMS_PER_ADDRESS=2" in body["error"]
        assert refused(server, v6[2])["limit"] == "SSE_MAX_STREAMS_PER_ADDRESS"  # same /64
        streams.append(opened(server, {**KEY, "X-Forwarded-For": "2001:db8:0:8::1"}))  # next /64
        streams.append(opened(server, {**KEY, "X-Forwarded-For": "198.51.100.2"}))
    finally:
        for s in streams:
            s.close()


def test_new_streams_per_address_are_rate_limited_by_a_token_bucket(gateway_factory):
    server = gateway_factory(workers=2, TRUSTED_PROXIES="1", SSE_NEW_STREAMS_PER_ADDRESS_RATE="0.5",
                             SSE_NEW_STREAMS_PER_ADDRESS_BURST="3")
    a = {**KEY, "X-Forwarded-For": "203.0.113.9"}
    for _ in range(3):  # the burst: open and close at once
        opened(server, a).close()
    body = refused(server, a)
    assert body["limit"] == "SSE_NEW_STREAMS_PER_ADDRESS_RATE"
    # Another address has its own bucket.
    opened(server, {**KEY, "X-Forwarded-For": "203.0.113.10"}).close()
    time.sleep(2.5)  # one token back at 0.5/s
    opened(server, a).close()
    refused(server, a)
