"""The notify scenario: the durable consumer API's throughput, and the notifier's added latency.

* **consumer events/s:** N ORDER_RECEIVED events in the history, read by one member of a new
  consumer group (``event_bus`` consumer: XREADGROUP, a no-op handler, XACK per entry), next to
  a bare ``XREAD`` of the same entries (no group, no acknowledgement): the ceiling.
* **notifier latency:** the notifier process (the Procfile's ``rakuda notify run``) with one
  Standard Webhooks target, a local HTTP server answering 200 at once; orders are published
  at a steady rate, and each is timed from just before ``publish`` to its arrival at the target.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis

from shared.config import Settings
from shared.constants import HISTORY_STREAM
from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent

SECRET = "whsec_YmVuY2gtbm90aWZ5LXNlY3JldC0zMi1ieXRlcyEh"


def _order(i: int) -> RealTimeEvent:
    return RealTimeEvent.create("ORDER_RECEIVED", i, "created",
                                {"marketplace": "EBAY", "orderId": f"B-{i}", "total": "1.00", "currency": "USD"})


def consumer_throughput(redis_url: str, n: int) -> list[dict[str, Any]]:
    bus = EventBus()
    bus.initialize(Settings.from_env({"REDIS_URL": redis_url}))
    client = redis.Redis.from_url(redis_url)
    group = f"bench-{os.getpid()}-{int(time.time())}"
    try:
        consumer = bus.consumer(group, lambda e: None, name="bench")
        before = client.xinfo_stream(HISTORY_STREAM)["last-generated-id"]
        events = [_order(i) for i in range(n)]
        for start in range(0, n, 1000):
            bus.publish_many("orders", events[start:start + 1000])
        handled = 0
        t0 = time.monotonic()
        while handled < n:
            entries = consumer.poll(count=500, block_ms=1000)
            consumer.handle(entries)
            handled += len(entries)
        grouped = n / (time.monotonic() - t0)
        t0 = time.monotonic()
        seen, last = 0, before
        while seen < n:
            reply = client.xread({HISTORY_STREAM: last}, count=500)
            items = reply[0][1]
            for _id, fields in items:
                RealTimeEvent.parse(fields[b"e"])  # decoded as the consumer decodes it
            seen += len(items)
            last = items[-1][0]
        bare = n / (time.monotonic() - t0)
        consumer.redis.close()
    finally:
        client.xgroup_destroy(HISTORY_STREAM, group)
        client.close()
        bus.close()
    return [{"what": f"consumer group (XREADGROUP + handler + XACK), {n} events", "per_s": round(grouped)},
            {"what": f"bare XREAD of the same entries (no group, no ack), {n} events", "per_s": round(bare)},
            {"what": "consumer ÷ bare XREAD", "per_s": round(grouped / bare, 2)}]


class _Target:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.arrived.setdefault(self.headers.get("webhook-id", ""), time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notifier_latency(redis_url: str, n: int, rate: float) -> list[dict[str, Any]]:
    target = _Target()
    client = redis.Redis.from_url(redis_url)
    for g in client.xinfo_groups(HISTORY_STREAM) if client.exists(HISTORY_STREAM) else []:
        if g["name"].decode().startswith("notify"):
            client.xgroup_destroy(HISTORY_STREAM, g["name"])
    env = {**os.environ, "REDIS_URL": redis_url, "NOTIFY_WEBHOOK_URL": target.url, "NOTIFY_WEBHOOK_SECRET": SECRET,
           "NOTIFY_DISCORD_WEBHOOK_URL": "", "NOTIFY_LINE_CHANNEL_TOKEN": "", "NOTIFY_LINE_TO": ""}
    log = tempfile.NamedTemporaryFile(prefix="bench-notifier-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "tasks.cli", "notify", "run"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    bus = EventBus()
    bus.initialize(Settings.from_env({"REDIS_URL": redis_url}))
    sent: dict[str, float] = {}
    try:
        deadline = time.time() + 30
        while not any(g["name"] == b"notify:webhook" for g in
                      (client.xinfo_groups(HISTORY_STREAM) if client.exists(HISTORY_STREAM) else [])):
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the notifier did not start; log {log.name}")
            time.sleep(0.05)
        for i in range(n):
            t = time.time()
            bus_id = bus.publish("orders", _order(i))
            assert bus_id is not None
            sent[bus_id] = t
            time.sleep(max(0.0, 1 / rate - (time.time() - t)))
        deadline = time.time() + 30
        while len(target.arrived) < n and time.time() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        bus.close()
        client.close()
        target.stop()
    latencies = sorted((target.arrived[i] - t) * 1000 for i, t in sent.items() if i in target.arrived)
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    os.unlink(log.name)
    return [{"what": f"notifier publish → target p50 / p99 ms ({n} orders at {rate:g}/s, webhook target)",
             "per_s": f"{q[49]:.1f} / {q[98]:.1f}"},
            {"what": "orders delivered / published", "per_s": f"{len(latencies)}/{n}"}]


def run(redis_url: str, events: int, latency_orders: int, rate: float) -> list[dict[str, Any]]:
    return consumer_throughput(redis_url, events) + notifier_latency(redis_url, latency_orders, rate)


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
    for row in run(url, 20_000, 500, 50.0):
        print(row)
