"""Spreading a reconnect storm: each stream its own retry, resumes served in arrival order."""

from __future__ import annotations

import gevent
import pytest

from gateway.admission import ResumeTurns, retry_for_client
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
