"""Per-request counters are added in process and reach the cluster totals in one round trip, and at a worker's stop."""

from __future__ import annotations

import time

import pytest
import redis
import requests

from gateway.totals import PendingCounts, read_totals
from tests.servers import free_port
from tests.waiting import eventually


def test_counts_reach_the_totals_in_one_flush_and_only_once(redis_url):
    client = redis.Redis.from_url(redis_url)
    counts = PendingCounts()
    for _ in range(3):
        counts.add("webhook:joom:accepted")
    counts.add("webhook:ebay:rejected")
    assert read_totals(client) == {}  # nothing sent yet: no round trip per count
    counts.flush(client)
    assert read_totals(client) == {"webhook:joom:accepted": 3, "webhook:ebay:rejected": 1}
    counts.flush(client)  # nothing new: nothing added again
    assert read_totals(client) == {"webhook:joom:accepted": 3, "webhook:ebay:rejected": 1}
    client.close()


def test_counts_survive_a_redis_error_and_go_with_the_next_flush(redis_url):
    client = redis.Redis.from_url(redis_url)
    gone = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    counts = PendingCounts()
    counts.add("webhook:joom:accepted", 2)
    with pytest.raises(redis.RedisError):
        counts.flush(gone)
    counts.add("webhook:joom:accepted")
    counts.flush(client)
    assert read_totals(client) == {"webhook:joom:accepted": 3}
    client.close()


def test_what_each_worker_counted_reaches_the_totals_when_it_stops(gateway_factory, redis_url):
    # A report interval far longer than the test: only the workers' stop sends what they counted.
    server = gateway_factory(workers=2, REALTIME_REPORT_INTERVAL="600")
    # Each worker's upkeep makes its first pass at start (a report, then a flush of what it has
    # counted): wait until both have reported, and for the rest of that pass, so that the counts
    # below can only leave with the stop.
    eventually(lambda: requests.get(server.url + "/api/realtime/status", headers={"X-API-Key": "test-key"},
                                    timeout=5).json()["processCount"] == 2, timeout=20, what="both workers reported")
    time.sleep(0.3)
    for _ in range(10):  # webhooks not configured: 503, counted "failed"
        assert requests.post(server.url + "/api/webhooks/joom", data=b"{}", timeout=5).status_code == 503
    for _ in range(3):
        assert requests.post(server.url + "/api/webhooks/nowhere", data=b"{}", timeout=5).status_code == 404
    client = redis.Redis.from_url(redis_url)

    def webhook_totals() -> dict[str, int]:
        return {name: count for name, count in read_totals(client).items() if name.startswith("webhook:")}

    try:
        assert webhook_totals() == {}  # counted in process, not sent yet
        server.stop(graceful=True)  # gunicorn's SIGTERM
        assert webhook_totals() == {"webhook:joom:failed": 10, "webhook:unknown:rejected": 3}
    finally:
        client.close()
