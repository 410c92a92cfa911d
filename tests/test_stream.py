"""The SSE stream of a real gunicorn + gevent gateway, read by a real HTTP client."""

from __future__ import annotations

import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from gateway.stream_session import kernel_give_up_ms
from shared.realtime import RealTimeEvent
from tests.sse_client import SSEClient
from tests.waiting import eventually

KEY = {"X-API-Key": "test-key"}
# One gateway for the module's tests that run with the default settings (tests/module_gateway.py);
# a test that changes its settings, stops it or reads its process-wide counters starts its own.
pytestmark = pytest.mark.module_gateway


def ev(event_type: str, ident: str, action: str = "updated", **data) -> RealTimeEvent:
    return RealTimeEvent.create(event_type, ident, action, data or None)


def stream(gateway, query: str = "", headers: dict | None = None) -> SSEClient:
    client = SSEClient(f"{gateway.url}/api/realtime/events{query}", {**KEY, **(headers or {})})
    assert client.status == 200, client.body()
    assert client.next(5).event == "connected"
    return client


def payload_ids(message) -> list[str]:
    return [e["payload"]["id"] for e in message.json["events"]]


def test_stream_headers_and_connected_message_arrive_at_once(gateway):
    started = time.time()
    with SSEClient(gateway.url + "/api/realtime/events?channels=inventory,orders", KEY) as client:
        first = client.next(5)
        assert time.time() - started < 0.9  # not held back until the first heartbeat (1 s)
        assert client.headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in client.headers["cache-control"]
        assert client.headers["x-accel-buffering"] == "no"
        assert first.event == "connected" and 1000 <= first.retry <= 4000  # SSE_RETRY + its spread
        body = first.json
        assert body["channels"] == ["inventory", "orders"]
        assert body["heartbeatInterval"] == 1000 and body["debounceWindow"] == 200
        assert body["debounceWindows"] == {"INVENTORY_CHANGE": 200, "ORDER_RECEIVED": 0,
                                           "PRICE_CHANGE": 200, "LISTING_UPDATE": 200}
        assert body["resumed"] is False and body["connectionId"]


def test_unknown_channel_is_a_400_naming_it(gateway):
    response = requests.get(gateway.url + "/api/realtime/events?channels=inventory,stock", headers=KEY, timeout=5)
    assert response.status_code == 400
    assert "stock" in response.json()["error"]


def test_channel_filter_delivers_only_subscribed_channels(gateway, bus):
    with stream(gateway, "?channels=inventory") as client:
        bus.publish("orders", ev("ORDER_RECEIVED", "o-1", "created"))
        bus.publish("inventory", ev("INVENTORY_CHANGE", "p-1", isAvailable=False))
        message = client.next_event(5)
        assert message.event == "INVENTORY_CHANGE" and payload_ids(message) == ["p-1"]
        assert all(m.event == "heartbeat" for m in client.collect(1.0))


def test_heartbeat_arrives_every_interval(gateway):
    with stream(gateway) as client:
        beats = [m for m in client.collect(4.5) if m.event == "heartbeat"]
    assert 3 <= len(beats) <= 5
    gaps = [b.received_at - a.received_at for a, b in zip(beats, beats[1:], strict=False)]
    # One every second on average; a single gap may stretch on a busy machine, never to a missed beat.
    assert 0.8 <= (beats[-1].received_at - beats[0].received_at) / len(gaps) <= 1.25, gaps
    assert all(gap < 1.95 for gap in gaps), gaps
    assert all(b.id for b in beats)  # heartbeats carry the cursor, so quiet clients stay resumable


def test_same_type_events_within_window_share_one_message(gateway, bus):
    with stream(gateway) as client:
        started = time.time()
        for i in range(5):
            bus.publish("pricing", ev("PRICE_CHANGE", f"l-{i}", oldPrice=1, newPrice=2))
            time.sleep(0.02)
        bus.publish("orders", ev("ORDER_RECEIVED", "o-1", "created"))
        got = [client.next_event(5), client.next_event(5)]
        by_type = {m.event: m for m in got}
        assert set(by_type) == {"PRICE_CHANGE", "ORDER_RECEIVED"}  # different types never share
        price = by_type["PRICE_CHANGE"].json
        assert price["type"] == "PRICE_CHANGE" and price["count"] == 5
        assert [e["payload"]["id"] for e in price["events"]] == [f"l-{i}" for i in range(5)]
        assert all(e["id"] and e["timestamp"] for e in price["events"])
        assert by_type["PRICE_CHANGE"].received_at - started < 0.2 + 1.0  # one window + a busy machine's margin
        assert by_type["PRICE_CHANGE"].id


def test_window_is_not_reset_by_a_continuous_stream(gateway, bus):
    """Regression for starvation: a steady stream must still flush every window."""
    sent_at = {}
    with stream(gateway, "?channels=inventory") as client:
        reader = ThreadPoolExecutor(1).submit(client.collect, 3.5)  # reads while we publish
        for i in range(40):  # one event every 50 ms for 2 s, window 200 ms
            sent_at[f"p-{i}"] = time.time()
            bus.publish("inventory", ev("INVENTORY_CHANGE", f"p-{i}"))
            time.sleep(0.05)
        messages = [m for m in reader.result() if m.event == "INVENTORY_CHANGE"]
    delays = {pid: m.received_at - sent_at[pid] for m in messages for pid in payload_ids(m)}
    assert set(delays) == set(sent_at)
    assert len(messages) >= 6  # about one per 200 ms window, not one at the end
    assert max(delays.values()) < 0.2 + 1.0, max(delays.values())  # starved, the first would wait 2 s


def test_big_window_is_truncated_with_full_count(gateway, bus):
    with stream(gateway, "?channels=listings") as client:
        bus.publish_many("listings", [ev("LISTING_UPDATE", f"x-{i}") for i in range(1000)])
        message = client.next_event(5)
        body = message.json
        assert body["count"] == 1000 and body["truncated"] is True
        assert len(body["events"]) == 100 and payload_ids(message)[:2] == ["x-0", "x-1"]
        assert all(m.event == "heartbeat" for m in client.collect(0.6))


def test_zero_window_sends_each_event_on_its_own(gateway_factory, bus):
    gateway = gateway_factory(SSE_DEBOUNCE_WINDOW="0")
    with stream(gateway, "?channels=orders") as client:
        bus.publish_many("orders", [ev("ORDER_RECEIVED", f"o-{i}", "created") for i in range(3)])
        got = [client.next_event(5) for _ in range(3)]
    assert [m.json["count"] for m in got] == [1, 1, 1]
    assert [payload_ids(m)[0] for m in got] == ["o-0", "o-1", "o-2"]


def test_an_order_leaves_before_the_other_types_windows_close(gateway_factory, bus):
    gateway = gateway_factory(SSE_DEBOUNCE_WINDOW="1500")
    with stream(gateway, "?channels=pricing,orders") as client:
        started = time.time()
        bus.publish("pricing", ev("PRICE_CHANGE", "l-1", oldPrice=1, newPrice=2))
        bus.publish("orders", ev("ORDER_RECEIVED", "o-1", "created"))
        first, second = client.next_event(5), client.next_event(5)
        last_id = client.last_id
    assert first.event == "ORDER_RECEIVED" and payload_ids(first) == ["o-1"]
    assert first.received_at - started < 1.1  # before the 1.5 s price window closes
    assert second.event == "PRICE_CHANGE" and second.received_at - started >= 1.2
    assert last_id == second.id


def test_per_type_windows_override_the_default_and_are_reported(gateway_factory, bus):
    gateway = gateway_factory(SSE_DEBOUNCE_WINDOW="0", SSE_DEBOUNCE_WINDOWS="PRICE_CHANGE:400")
    with stream(gateway, "?channels=pricing,inventory") as client:
        bus.publish_many("pricing", [ev("PRICE_CHANGE", f"l-{i}", oldPrice=1, newPrice=2) for i in range(3)])
        bus.publish_many("inventory", [ev("INVENTORY_CHANGE", f"p-{i}") for i in range(2)])
        got = [client.next_event(5) for _ in range(3)]
    assert [(m.event, m.json["count"]) for m in got] == [
        ("INVENTORY_CHANGE", 1), ("INVENTORY_CHANGE", 1), ("PRICE_CHANGE", 3)]
    status = _status(gateway)
    assert status["debounceWindow"] == 0
    assert status["debounceWindows"] == {"INVENTORY_CHANGE": 0, "ORDER_RECEIVED": 0,
                                         "PRICE_CHANGE": 400, "LISTING_UPDATE": 0}


def test_disabled_realtime_answers_503_and_publishes_nothing(gateway_factory):
    gateway = gateway_factory(REALTIME_ENABLED="false")
    response = requests.get(gateway.url + "/api/realtime/events", headers=KEY, timeout=5)
    assert response.status_code == 503 and "REALTIME_ENABLED" in response.json()["error"]
    test = requests.post(gateway.url + "/api/realtime/test", headers=KEY, timeout=5)
    assert test.json()["published"] is False


def test_connection_limit_answers_503_with_retry_after(gateway_factory):
    gateway = gateway_factory(SSE_MAX_CONNECTIONS="2")
    with stream(gateway), stream(gateway):
        response = requests.get(gateway.url + "/api/realtime/events", headers=KEY, timeout=5)
        assert response.status_code == 503 and response.headers["Retry-After"]
    with stream(gateway):  # room again once they left
        pass


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _status(gateway) -> dict:
    return requests.get(gateway.url + "/api/realtime/status", headers=KEY, timeout=5).json()


def _connections_on_this_database(client) -> list[dict]:
    """CLIENT LIST is server-wide: keep the connections on this test's database (tests run side by side)."""
    db = str(client.connection_pool.connection_kwargs.get("db", 0))
    return [c for c in client.client_list() if str(c.get("db")) == db]


def test_client_that_left_is_cleaned_up_within_a_heartbeat(gateway, redis_client):
    pid = _status(gateway)["process"]["pid"]
    baseline_fds = _open_fds(pid)
    baseline_redis = len(_connections_on_this_database(redis_client))
    clients = [stream(gateway) for _ in range(20)]
    assert _status(gateway)["process"]["activeConnections"] == 20
    for c in clients:
        c.close()
    eventually(lambda: _status(gateway)["process"]["activeConnections"] == 0, 1.0 + 0.5,  # a heartbeat + margin
               what="no stream left open")
    assert _open_fds(pid) <= baseline_fds + 1  # no leaked sockets
    assert len(_connections_on_this_database(redis_client)) <= baseline_redis + 1
    listed = requests.get(gateway.url + "/api/realtime/connections", headers=KEY, timeout=5).json()
    assert listed["total"] == 0


def test_connections_lists_open_streams(gateway, bus):
    with stream(gateway, "?channels=orders") as client:
        bus.publish("orders", ev("ORDER_RECEIVED", "o-1", "created"))
        client.next_event(5)
        # Listed from the processes' reports (every REALTIME_REPORT_INTERVAL): after the event's.
        body = eventually(lambda: (b := requests.get(gateway.url + "/api/realtime/connections", headers=KEY,
                                                     timeout=5).json())["connections"]
                          and b["connections"][0]["lastEventAt"] and b, timeout=5, what="the stream listed")
    (conn,) = body["connections"]
    assert conn["channels"] == ["orders"] and conn["bytesSent"] > 0
    assert conn["connectedAt"] and conn["lastEventAt"]


def never_reading_stream(gateway) -> socket.socket:
    """A stream on ``listings`` whose client never reads (and advertises a tiny window)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gateway.port))
    sock.sendall(b"GET /api/realtime/events?channels=listings HTTP/1.1\r\nHost: x\r\nX-API-Key: test-key\r\n\r\n")
    eventually(lambda: _status(gateway)["process"]["activeConnections"] == 1, timeout=10, what="the stream registered")
    return sock


def test_slow_client_is_dropped_while_a_fast_client_keeps_its_latency(gateway_factory, bus):
    gateway = gateway_factory(SSE_DEBOUNCE_WINDOW="0", SSE_CLIENT_BUFFER="65536", SSE_SEND_TIMEOUT="2000")
    slow = never_reading_stream(gateway)
    blob = "x" * 10000
    delays = []
    with stream(gateway, "?channels=listings") as fast:
        for i in range(300):  # ~3 MB: far past the slow client's buffers
            sent = time.time()
            bus.publish("listings", ev("LISTING_UPDATE", f"l-{i}", blob=blob))
            message = fast.next_event(5)
            delays.append(message.received_at - sent)
            assert payload_ids(message) == [f"l-{i}"]
    # Dropped once its buffer has stayed full for SSE_SEND_TIMEOUT: by now, or within that time.
    stats = eventually(lambda: (s := requests.get(gateway.url + "/api/realtime/stats", headers=KEY, timeout=5).json())
                       ["slowClientsDropped"] and s, timeout=10, what="the slow client dropped")
    slow.close()
    assert stats["slowClientsDropped"] == 1
    assert stats["types"]["LISTING_UPDATE"]["dropped"] >= 1
    # A fan-out blocked by the slow client would hold each message up to SSE_SEND_TIMEOUT (2 s).
    assert sorted(delays)[int(len(delays) * 0.95)] < 1.0, max(delays)


def test_the_kernel_aborts_a_stalled_connection_only_after_the_gateway_has_dropped_it_as_slow():
    # The slow client above would otherwise be aborted by the kernel (counted as gone) about when
    # the gateway's send timeout fires: the kernel's clock starts first.
    assert kernel_give_up_ms(heartbeat_interval_ms=1000, send_timeout_ms=2000) >= 2 * 2000
    assert kernel_give_up_ms(heartbeat_interval_ms=30000, send_timeout_ms=10000) == 30000  # a vanished peer


def test_post_test_publishes_a_listing_update(gateway):
    with stream(gateway, "?channels=listings") as client:
        response = requests.post(gateway.url + "/api/realtime/test", headers=KEY, timeout=5)
        assert response.status_code == 201
        created = response.json()
        message = client.next_event(5)
    assert created["type"] == "LISTING_UPDATE" and created["published"] is True
    assert message.json["events"][0]["id"] == created["id"]


def test_stopping_the_gateway_ends_streams_at_once_so_clients_reconnect(gateway_factory):
    gateway = gateway_factory()  # its own: it is stopped
    with stream(gateway) as client:
        started = time.time()
        gateway.proc.send_signal(signal.SIGTERM)  # gunicorn's graceful stop, as a deploy sends it
        with pytest.raises((EOFError, OSError)):
            client.collect(8) and client.next(1)
        ended_after = time.time() - started
    gateway.stop()  # then the processes exit (gunicorn's own pace, not the streams')
    assert ended_after < 3  # not gunicorn's graceful_timeout per stream


def test_batch_size_limit_is_a_setting(gateway_factory, bus):
    gateway = gateway_factory(SSE_BATCH_MAX_EVENTS="10")
    with stream(gateway, "?channels=listings") as client:
        bus.publish_many("listings", [ev("LISTING_UPDATE", f"o-{i}") for i in range(25)])
        body = client.next_event(5).json
    assert body["count"] == 25 and len(body["events"]) == 10 and body["truncated"] is True


def test_a_client_whose_socket_takes_nothing_is_dropped_after_the_send_timeout(gateway_factory, bus):
    """The buffer is far from full: it is the blocked write that counts (SSE_SEND_TIMEOUT)."""
    gateway = gateway_factory(SSE_DEBOUNCE_WINDOW="0", SSE_CLIENT_BUFFER="104857600", SSE_SEND_TIMEOUT="1000")
    stuck = never_reading_stream(gateway)
    blob = "x" * 20000
    bus.publish_many("listings", [ev("LISTING_UPDATE", f"l-{i}", blob=blob) for i in range(400)])  # ~8 MB
    dropped = eventually(lambda: requests.get(gateway.url + "/api/realtime/stats", headers=KEY, timeout=5).json()[
        "slowClientsDropped"], timeout=8, interval=0.2, what="the stuck client dropped")
    stuck.close()
    assert dropped == 1
