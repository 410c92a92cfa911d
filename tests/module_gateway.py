"""One gateway shared by the tests of a module, and what keeps those tests apart.

Starting a gateway costs a second or two; a module of tests that all run with the default test
settings can share one. Before each test, ``prepare_for_next_test``:

1. drains the gateway: a marker event of every type is published and read back on a stream of
   every channel, so that every batch an earlier test left in a debounce window has gone out
   before this test opens its first stream (a batch leaves in order, with or before the marker);
2. empties the database, keeping only the history's epoch: the gateway reads its epoch when it
   connects to Redis, and a database with another epoch would make every resume a reset; then
   waits for the gateway's next report, so that the cluster's totals count it again.

A test that changes the gateway itself (stops it, kills it, changes its settings, reads its
process-wide counters or its log) starts a gateway of its own with ``gateway_factory`` instead.
"""

from __future__ import annotations

import uuid

import redis

from shared.config import Settings
from shared.constants import HISTORY_EPOCH, PROCESS_PREFIX
from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent
from tests.servers import GatewayServer
from tests.sse_client import SSEClient
from tests.waiting import eventually

# One marker per channel (each channel carries one event type).
_MARKERS = {
    "inventory": ("INVENTORY_CHANGE", "updated"),
    "orders": ("ORDER_RECEIVED", "created"),
    "pricing": ("PRICE_CHANGE", "updated"),
    "listings": ("LISTING_UPDATE", "updated"),
}


class ModuleGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = GatewayServer(settings.env_items())
        self.epoch: str | None = None

    def start(self) -> ModuleGateway:
        self.server.start()
        self.drain()
        client = redis.Redis.from_url(self.settings.redis_url, decode_responses=True)
        try:
            self.epoch = client.get(HISTORY_EPOCH)
        finally:
            client.close()
        assert self.epoch, "the gateway has not read the history's epoch"
        return self

    def stop(self) -> None:
        self.server.discard()

    def drain(self) -> None:
        """Every batch still held in the gateway's debounce windows has left when this returns."""
        tag = "drain-" + uuid.uuid4().hex[:8]
        bus = EventBus()
        bus.initialize(self.settings)
        try:
            with SSEClient(self.server.url + "/api/realtime/events", self.server.headers()) as client:
                assert client.next(10).event == "connected"
                for channel, (event_type, action) in _MARKERS.items():
                    bus.publish(channel, RealTimeEvent.create(event_type, tag, action))
                waiting = {event_type for event_type, _action in _MARKERS.values()}
                while waiting:
                    message = client.next_event(10)
                    if any(e["payload"]["id"] == tag for e in message.json.get("events", [])):
                        waiting.discard(message.event)
        finally:
            bus.close()

    def prepare_for_next_test(self) -> str:
        """Drain, then empty the database but for the epoch; the database's URL."""
        assert self.server.proc is not None and self.server.proc.poll() is None, (
            "the module's gateway has stopped: a test that stops it needs a gateway of its own")
        self.drain()
        client = redis.Redis.from_url(self.settings.redis_url)
        try:
            client.flushdb()
            client.set(HISTORY_EPOCH, self.epoch or "")
            # The gateway reports itself every REALTIME_REPORT_INTERVAL: back in the cluster's totals.
            eventually(lambda: client.keys(PROCESS_PREFIX + "*"), timeout=10, what="the gateway's report")
        finally:
            client.close()
        return self.settings.redis_url
