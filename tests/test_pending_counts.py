"""Per-request counters are added in process and reach the cluster totals in one round trip."""

from __future__ import annotations

import pytest
import redis

from gateway.totals import PendingCounts, read_totals
from tests.servers import free_port


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
