"""Status and stats of a gateway of the test's own, on a database of its own: exact counts."""

from __future__ import annotations

import json

import requests

from tests.test_stream import KEY, _status, ev, stream
from tests.waiting import eventually


def test_status_and_stats_report_settings_and_counts(gateway, bus):
    with stream(gateway, "?channels=orders") as client:
        bus.publish_many("orders", [ev("ORDER_RECEIVED", f"o-{i}", "created") for i in range(3)])
        client.next_event(5)

        def reported() -> dict | None:
            stats = requests.get(gateway.url + "/api/realtime/stats?days=7", headers=KEY, timeout=5).json()
            today = stats["days"][0]["types"].get("ORDER_RECEIVED", {})
            return stats if stats["types"].get("ORDER_RECEIVED", {}).get("delivered", 0) >= 3 and today.get(
                "delivered", 0) >= 3 else None

        stats = eventually(reported, timeout=5, what="the three deliveries in the totals and in the day's history")
        status = _status(gateway)
    assert status["enabled"] is True and status["redisReachable"] is True
    assert status["heartbeatInterval"] == 1000 and status["debounceWindow"] == 200
    assert status["activeConnections"] == 1 and status["process"]["uptime"] > 0
    orders = stats["types"]["ORDER_RECEIVED"]  # window 0: each order leaves alone
    assert orders["delivered"] == 3 and orders["messages"] == 3 and orders["coalesced"] == 0
    assert orders["publishedToday"] == 3
    assert stats["latencyMs"]["p50"] is not None and len(stats["days"]) == 7
    assert stats["days"][0]["types"]["ORDER_RECEIVED"]["published"] == 3
    assert stats["days"][0]["types"]["ORDER_RECEIVED"]["delivered"] == 3
    bad = requests.get(gateway.url + "/api/realtime/stats?days=x", headers=KEY, timeout=5)
    assert bad.status_code == 400 and json.loads(bad.text)["error"]
