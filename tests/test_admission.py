"""Spreading a reconnect storm: each stream its own retry, resumes served in arrival order."""

from __future__ import annotations

import socket
import time

import gevent
import pytest

from gateway.admission import ResumeTurns, retry_for_client
from shared.realtime import RealTimeEvent
from tests.sse_client import SSEClient

KEY = {"X-API-Key": "test-key"}


def test_retry_lies_between_base_and_base_plus_spread():
    assert retry_for_client(1000, 2000, lambda: 0.0) == 1000
    assert retry_for_client(1000, 2000, lambda: 1.0) == 3000
    assert retry_for_client(1000, 0, lambda: 0.7) == 1000
    with pytest.raises(ValueError):
        retry_for_client(-1, 10)


def test_each_stream_is_told_its_own_retry(gateway_factory):
    gateway = gateway_factory(SSE_RETRY="1000", SSE_RETRY_SPREAD="4000")
    retries = []
    for _ in range(12):
        with SSEClient(gateway.url + "/api/realtime/events", KEY) as client:
            retries.append(client.next(5).retry)
    assert all(1000 <= r <= 5000 for r in retries), retries
    assert len(set(retries)) >= 6, f"not spread: {retries}"


def test_resumes_beyond_the_limit_wait_and_are_served_in_arrival_order():
    turns = ResumeTurns(at_once=2)
    served: list[int] = []

    def resume(n: int) -> None:
        with turns.turn():
            served.append(n)
            gevent.sleep(0.005)

    crowd = [gevent.spawn(resume, n) for n in range(50)]
    gevent.sleep(0)
    assert turns.waiting == 48
    gevent.joinall(crowd, timeout=10)
    assert served == list(range(50)) and turns.waiting == 0


def test_a_resuming_client_that_does_not_read_does_not_hold_up_the_resumes_behind_it(gateway_factory, bus):
    """One resume at a time, and the first resumer never reads its ~3 MB replay: the next resumer
    still gets its ``connected`` and its replay at once, not after the first one's send timeout."""
    gateway = gateway_factory(SSE_RESUMES_AT_ONCE="1", SSE_DEBOUNCE_WINDOW="0", SSE_DEBOUNCE_WINDOWS="",
                              SSE_SEND_TIMEOUT="30000", SSE_CLIENT_BUFFER="8388608")
    url = gateway.url + "/api/realtime/events?channels=inventory"
    with SSEClient(url, KEY) as first_visit:
        cursor = first_visit.next(5).id
    assert cursor
    padding = "x" * 3000
    bus.publish_many("inventory", [RealTimeEvent.create("INVENTORY_CHANGE", n, "updated", {"note": padding})
                                   for n in range(1000)])
    time.sleep(0.5)  # the gateway's reader takes them into its recent history

    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a window too small for the replay
    stuck.connect(("127.0.0.1", gateway.port))
    stuck.sendall(f"GET /api/realtime/events?channels=inventory HTTP/1.1\r\nHost: x\r\nX-API-Key: test-key\r\n"
                  f"Last-Event-ID: {cursor}\r\n\r\n".encode())
    try:
        time.sleep(1.0)  # it has its turn, and its replay fills the socket
        started = time.monotonic()
        with SSEClient(url, {**KEY, "Last-Event-ID": cursor}, timeout=10) as behind:
            opening = behind.next(10)
            replayed = behind.next(10)
        waited = time.monotonic() - started
    finally:
        stuck.close()
    assert opening.event == "connected" and opening.json["resumed"] is True
    assert replayed.event == "INVENTORY_CHANGE"
    assert waited < 5.0, f"the resume behind a client that does not read waited {waited:.1f} s"
