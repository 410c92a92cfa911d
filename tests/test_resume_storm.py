"""A deploy's reconnect storm: every dashboard resumes with its Last-Event-ID, and none loses an event.

A few hundred streams, a steady publish stream, the gateway restarted under them, and the Redis
command pool cut to one connection: resumes must not depend on a free pooled connection (with
one resume check per client through that pool, this test sees hundreds of resets).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time

from shared.realtime import RealTimeEvent
from tests.servers import GatewayServer
from tests.sse_client import SSEClient
from tests.waiting import eventually

KEY = {"X-API-Key": "test-key"}
CLIENTS = 300
PUBLISH_EVERY_S = 0.02


class Dashboard(threading.Thread):
    """A browser-like stream: reconnects by itself after a short jittered delay, with Last-Event-ID."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.seen: list[str] = []
        self.resets = 0
        self.connects = 0
        self.refusals: list[int] = []
        self.last_id: str | None = None
        self.process = ""
        self.connected = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            headers = {**KEY, "Last-Event-ID": self.last_id} if self.last_id else KEY
            try:
                client = SSEClient(self.url, headers, timeout=30)
            except (OSError, EOFError, TimeoutError):
                time.sleep(random.uniform(0.05, 0.3))
                continue
            with client:
                if client.status != 200:
                    self.refusals.append(client.status)
                    time.sleep(random.uniform(0.5, 1.0))
                    continue
                self.connects += 1
                try:
                    while not self.stop.is_set():
                        message = client.next(10)
                        if message.id:
                            self.last_id = message.id
                        if message.event == "connected":
                            self.process = message.json["processId"]
                            self.connected.set()
                        elif message.event == "reset":
                            self.resets += 1
                        elif message.event == "INVENTORY_CHANGE":
                            self.seen.extend(e["payload"]["id"] for e in message.json["events"])
                except (OSError, EOFError, TimeoutError):
                    pass
            time.sleep(random.uniform(0.1, 0.6))  # the retry: a browser waits before it reconnects


def wait_until_seen(dashboards: list[Dashboard], wanted: set[str], timeout: float) -> None:
    """Until every dashboard has seen every one of ``wanted``, or ``timeout``: the assertions that
    follow say what is missing."""
    with contextlib.suppress(AssertionError):
        eventually(lambda: all(wanted <= set(d.seen) for d in dashboards), timeout=timeout, interval=0.5)


def publish_steadily(bus, stop: threading.Event, published: list[str]) -> None:
    i = 0
    while not stop.is_set():
        ident = f"p-{i}"
        bus.publish("inventory", RealTimeEvent.create("INVENTORY_CHANGE", ident, "updated", None))
        published.append(ident)
        i += 1
        time.sleep(PUBLISH_EVERY_S)


def test_reconnect_storm_after_restart_resumes_every_stream_without_reset_or_loss(gateway_factory, bus):
    # One command connection with a 0.1 s wait: a few hundred resumes press it as thousands
    # press the 20-connection pool in production. A resume that needed it would be reset.
    env = {"SSE_DEBOUNCE_WINDOW": "0", "REDIS_COMMAND_POOL_SIZE": "1", "REDIS_COMMAND_POOL_WAIT": "0.1",
           "SSE_RETRY": "300"}
    old = gateway_factory(**env)
    url = old.url + "/api/realtime/events?channels=inventory"
    stop_clients, stop_publishing = threading.Event(), threading.Event()
    dashboards = [Dashboard(url, stop_clients) for _ in range(CLIENTS)]
    for d in dashboards:
        d.start()
    new: GatewayServer | None = None
    try:
        for d in dashboards:
            assert d.connected.wait(60), "a stream did not connect before the restart"
        published: list[str] = []
        publisher = threading.Thread(target=publish_steadily, args=(bus, stop_publishing, published), daemon=True)
        publisher.start()
        time.sleep(1)  # events before the restart
        connects_before = sum(d.connects for d in dashboards)
        old.stop()  # SIGTERM to the master: every stream ends
        # A new interpreter, as a deploy starts: the storm meets a worker still importing the app.
        new = GatewayServer(dict(old.env), port=old.port, forked=False).start()
        eventually(lambda: sum(d.connects for d in dashboards) >= connects_before + CLIENTS, timeout=90,
                   interval=0.2, what="every stream back")
        time.sleep(1)  # and events after it
        stop_publishing.set()
        publisher.join(10)
        wanted = set(published)
        wait_until_seen(dashboards, wanted, timeout=60)
        resets = sum(d.resets for d in dashboards)
        lost = sum(len(wanted - set(d.seen)) for d in dashboards)
        log = new.read_log()
        assert resets == 0, f"{resets} streams got reset instead of their missed events; log:\n{log[-3000:]}"
        assert lost == 0, f"{lost} events lost over {CLIENTS} streams"
        assert not any(d.refusals for d in dashboards)
    finally:
        stop_clients.set()
        stop_publishing.set()
        if new is not None:
            new.discard()
        for d in dashboards:
            d.join(15)
