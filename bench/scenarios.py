"""The benchmark scenarios, each one function: start a system, load it, measure, stop it.

Each returns plain dicts (one per system and level) that ``bench.report`` turns into the
table. Systems are measured one after the other within a scenario, so that every
comparison comes from the same minute of the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench import procstat
from bench.events import event_dict
from bench.loadclient import LoadClient, Totals
from bench.systems import SYSTEMS, System, clear_bench_keys


@dataclass
class Plan:
    """What one run measures; ``--smoke`` shrinks every figure."""

    redis_url: str
    systems: list[str]
    scenarios: list[str]
    client_processes: int = 4
    heartbeat_ms: int = 2000
    capacity_levels: list[int] = field(default_factory=lambda: [1000, 5000, 10000, 15000])
    fanout_levels: list[int] = field(default_factory=lambda: [1000, 5000])
    fanout_messages: int = 300_000
    latency_clients: int = 1000
    latency_rate: float = 100.0
    latency_seconds: float = 8.0
    latency_windows: list[int] = field(default_factory=lambda: [0, 500])
    burst_clients: int = 1000
    burst_events: int = 100_000
    burst_flasksse_events: int = 300  # no batching: every event is a message to every client
    burst_window_ms: int = 500
    bus_events: int = 20_000
    notify_events: int = 20_000  # bench.notify: events through one consumer group
    notify_orders: int = 500  # bench.notify: orders timed through the notifier...
    notify_rate: float = 50.0  # ...published at this rate
    wait_limit_s: float = 30.0
    profile_dir: str | None = None  # py-spy the worker during each measured phase
    pipeline_listings: int = 50_000  # bench.pipeline: a price sync over this many ACTIVE listings
    pipeline_clients: int = 4
    pipeline_concurrency: int = 2  # the Procfile's default WORKER_CONCURRENCY
    pipeline_window_ms: int = 0  # debounce 0: every event is its own message, so every one is counted
    pipeline_limit_s: float = 900.0
    storm_levels: list[int] = field(default_factory=lambda: [5000, 10000])  # bench.storm
    storm_restarts: list[str] = field(default_factory=lambda: ["reload", "restart"])
    storm_rate: float = 20.0
    storm_tree: str | None = None  # the gateway's source tree (default: this one)
    pipeline_pg_url: str = field(default_factory=lambda: os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))

    @classmethod
    def smoke(cls, redis_url: str, systems: list[str], scenarios: list[str]) -> Plan:
        return cls(redis_url, systems, scenarios, client_processes=2, heartbeat_ms=500, capacity_levels=[200],
                   fanout_levels=[200], fanout_messages=10_000, latency_clients=200, latency_rate=50,
                   latency_seconds=1.5, latency_windows=[0, 200], burst_clients=100, burst_events=5000,
                   burst_flasksse_events=200, burst_window_ms=200, bus_events=2000, wait_limit_s=10,
                   pipeline_listings=1000, pipeline_clients=2, pipeline_limit_s=60,
                   notify_events=2000, notify_orders=50, storm_levels=[100], storm_restarts=["reload"])


@contextlib.contextmanager
def running(name: str, plan: Plan, debounce_ms: int = 0) -> Iterator[System]:
    clear_bench_keys(plan.redis_url)
    system = SYSTEMS[name](plan.redis_url, heartbeat_ms=plan.heartbeat_ms, debounce_ms=debounce_ms)
    failed = True
    try:
        system.start()
        yield system
        failed = False
    finally:
        if failed:
            print(f"{name} failed; its log is {system.log.name}:\n{system.log_tail()}", file=sys.stderr)
        system.stop(keep_log=failed)


@contextlib.contextmanager
def profiled(plan: Plan, system: System, label: str) -> Iterator[None]:
    """Record the server's stacks with py-spy (if ``plan.profile_dir``) while the body runs."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not plan.profile_dir or not Path(spy).exists():
        yield
        return
    out = Path(plan.profile_dir) / f"{label}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([spy, "record", "--pid", str(system.worker_pid), "--rate", "200", "--format", "raw",
                             "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_streams(lc: LoadClient, system: System, n: int, timeout: float = 120.0) -> dict[str, Any]:
    result = lc.connect("127.0.0.1", system.port, system.stream_path, system.stream_headers(), n,
                        timeout=timeout, wait_headers=system.wait_headers)
    return result


def wait_for(lc: LoadClient, limit_s: float, *, messages: int | None = None, events: int | None = None,
             idle_s: float = 3.0) -> Totals:
    """Poll until that many messages (or events) arrived, nothing moved for ``idle_s``, or ``limit_s``."""
    deadline = time.monotonic() + limit_s
    seen, last_change = -1, time.monotonic()
    while True:
        totals = lc.totals()
        if totals.messages != seen:  # heartbeats do not count as progress
            seen, last_change = totals.messages, time.monotonic()
        now = time.monotonic()
        done = (messages is not None and totals.messages >= messages) or (
            events is not None and totals.events >= events)
        if done or now > deadline or now - last_change > idle_s:
            return totals
        time.sleep(0.2)


class PeakRss(threading.Thread):
    """Samples a process's RSS every 50 ms while running."""

    def __init__(self, system: System) -> None:
        super().__init__(daemon=True)
        self.system = system
        self.peak_kb = system.rss_kb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.05):
            with contextlib.suppress(OSError):
                self.peak_kb = max(self.peak_kb, self.system.rss_kb())

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=2)
        return self.peak_kb


# --- capacity -------------------------------------------------------------------------------

def capacity(plan: Plan, lc: LoadClient, name: str) -> list[dict[str, Any]]:
    """Streams held by one worker at each level (added on top of the previous), idle, with heartbeats."""
    rows: list[dict[str, Any]] = []
    with running(name, plan) as system:
        time.sleep(0.5)
        base_rss = system.rss_kb()
        held = 0
        for level in plan.capacity_levels:
            row: dict[str, Any] = {"system": name, "clients": level, "heartbeat_ms": plan.heartbeat_ms}
            opened = open_streams(lc, system, level - held, timeout=max(30.0, level / 200))
            held += opened["ok"]
            row["connect_s"] = round(opened["seconds"], 2)
            row["failed"] = opened["failed"]
            subscribed = system.wait_subscribed(held, timeout=max(10.0, level / 500))
            lc.mark(lazy=0.05)
            cpu0 = system.cpu_s()
            hold = 2.5 * plan.heartbeat_ms / 1000
            time.sleep(hold)
            totals = lc.totals()
            row.update(
                held=totals.live if system.wait_headers else min(totals.open, subscribed),
                rss_kb=system.rss_kb(),
                kb_per_stream=round((system.rss_kb() - base_rss) / max(1, totals.open), 2),
                redis_connections=system.redis_connections(),
                open_fds=procstat.open_fds(system.worker_pid),
                heartbeats=totals.heartbeats,
                heartbeats_expected=int(totals.open * (hold * 1000 // plan.heartbeat_ms)),
                heartbeat_max_gap_ms=round(totals.hb_gap_ms),
                idle_cpu_pct=round(100 * (system.cpu_s() - cpu0) / hold, 1),
                closed_by_server=totals.closed,
            )
            rows.append(row)
            if row["held"] < level:
                row["note"] = f"held {row['held']} of {level}; failures {opened['failed']}"
                break
        lc.close_all()
    return rows


# --- fan-out -------------------------------------------------------------------------------

def fanout(plan: Plan, lc: LoadClient, name: str) -> list[dict[str, Any]]:
    """Messages written per second when one burst must reach every client, one message per event."""
    rows = []
    for level in plan.fanout_levels:
        with running(name, plan, debounce_ms=0) as system:
            opened = open_streams(lc, system, level, timeout=max(30.0, level / 200))
            system.wait_subscribed(opened["ok"], timeout=20)
            events = max(20, plan.fanout_messages // max(1, opened["ok"]))
            publisher = system.publisher()
            lc.mark(lazy=0.02)
            cpu0 = system.cpu_s()
            with profiled(plan, system, f"fanout-{name}-{level}"):
                publisher.burst(events)
                t0 = publisher.started_ms
                totals = wait_for(lc, plan.wait_limit_s, messages=events * opened["ok"])
            cpu = system.cpu_s() - cpu0
            publisher.close()
            elapsed_s = ((totals.last_ms or t0) - t0) / 1000
            rows.append({
                "system": name, "clients": opened["ok"], "events": events,
                "messages": totals.messages, "expected": events * opened["ok"],
                "seconds": round(elapsed_s, 3),
                "msgs_per_s": round(totals.messages / elapsed_s) if elapsed_s > 0 else None,
                "cpu_s": round(cpu, 2),
                "cpu_s_per_100k": round(cpu / totals.messages * 1e5, 3) if totals.messages else None,
                "client_cpu_s": round(totals.cpu_s, 1),
            })
            lc.close_all()
    return rows


# --- latency -------------------------------------------------------------------------------

def latency(plan: Plan, lc: LoadClient, name: str) -> list[dict[str, Any]]:
    """publish→receive at a steady rate, per debounce window (systems without one: window 0 only)."""
    rows = []
    windows = plan.latency_windows if name.startswith("gateway") else [0]
    for window in windows:
        with running(name, plan, debounce_ms=window) as system:
            opened = open_streams(lc, system, plan.latency_clients)
            system.wait_subscribed(opened["ok"], timeout=20)
            publisher = system.publisher()
            count = int(plan.latency_rate * plan.latency_seconds)
            lc.mark(lazy=0.05)
            cpu0, wall0 = system.cpu_s(), time.monotonic()
            with profiled(plan, system, f"latency-{name}-{window}"):
                publisher.at_rate(count, plan.latency_rate)
                totals = wait_for(lc, window / 1000 + 3.0, events=count * opened["ok"], idle_s=window / 1000 + 1.0)
            cpu = system.cpu_s() - cpu0
            publisher.close()
            rows.append({
                "system": name, "window_ms": window, "clients": opened["ok"], "rate": plan.latency_rate,
                "events_expected": count * opened["ok"], "events": totals.events, "messages": totals.messages,
                "p50_ms": totals.percentile(0.50), "p95_ms": totals.percentile(0.95),
                "p99_ms": totals.percentile(0.99), "max_ms": totals.max_latency_ms,
                "latency_samples": sum(totals.hist.values()),
                "server_cpu_pct": round(100 * cpu / (time.monotonic() - wall0), 1),
                "bytes_per_msg": round(totals.bytes / totals.messages) if totals.messages else None,
                "cpu_s_per_100k": round(cpu / totals.messages * 1e5, 3) if totals.messages else None,
                "client_cpu_s": round(totals.cpu_s, 1),
            })
            lc.close_all()
    return rows


# --- burst ---------------------------------------------------------------------------------

def burst(plan: Plan, lc: LoadClient, name: str) -> list[dict[str, Any]]:
    """One big publish_many: how many messages each client gets, how soon the server is drained."""
    if name.startswith("ceiling"):
        return []  # it has no bus and no batching: a burst is the fan-out scenario
    events = plan.burst_events if name.startswith("gateway") else plan.burst_flasksse_events
    with running(name, plan, debounce_ms=plan.burst_window_ms) as system:
        opened = open_streams(lc, system, plan.burst_clients)
        system.wait_subscribed(opened["ok"], timeout=20)
        publisher = system.publisher()
        time.sleep(0.3)
        sampler = PeakRss(system)
        rss0 = sampler.peak_kb
        sampler.start()
        lc.mark(lazy=0.01)
        with profiled(plan, system, f"burst-{name}"):
            publish_s = publisher.burst(events)
            t0 = publisher.started_ms
            t_end = t0 + publish_s * 1000
            totals = wait_for(lc, plan.wait_limit_s, idle_s=plan.burst_window_ms / 1000 + 1.0)
        peak = sampler.stop()
        publisher.close()
        window_s = plan.burst_window_ms / 1000
        bound = int(publish_s / window_s + 2) if window_s else None
        row = {
            "system": name, "clients": opened["ok"], "events": events, "window_ms": plan.burst_window_ms,
            "publish_s": round(publish_s, 3),
            "events_carried": totals.events, "events_announced": totals.announced,
            "events_expected": events * opened["ok"],
            "msgs_per_client_min": totals.per_client_min, "msgs_per_client_max": totals.per_client_max,
            "msgs_per_client_bound": bound if name.startswith("gateway") else None,
            "first_message_after_ms": round(totals.first_ms - t0) if totals.first_ms else None,
            "drained_after_ms": round((totals.last_ms or t_end) - t_end),
            "rss_growth_mb": round((peak - rss0) / 1024, 1),
            "peak_rss_mb": round(peak / 1024, 1),
        }
        lc.close_all()
    return [row]


# --- pipeline: a price sync through the outbox (bench/pipeline.py) -------------------------

def pipeline(plan: Plan, lc: LoadClient, name: str) -> list[dict[str, Any]]:
    from bench.pipeline import pipeline as run

    return run(plan, lc, name)


# --- bus -----------------------------------------------------------------------------------

def bus(plan: Plan) -> list[dict[str, Any]]:
    """Events/s into Redis: EventBus.publish / publish_many next to bare PUBLISH and redis-benchmark."""
    from bench.publishers import GatewayPublisher

    clear_bench_keys(plan.redis_url)
    n = plan.bus_events
    rows = []
    pub = GatewayPublisher(plan.redis_url)
    try:
        single = max(200, n // 10)
        seconds = pub.at_rate(single, 0)
        rows.append({"what": "EventBus.publish (XADD+PUBLISH+stats, one call per event)", "events": single,
                     "per_s": round(single / seconds)})
        dicts = [event_dict("PRICE_CHANGE", i) for i in range(n)]
        t0 = time.monotonic()
        pub.bus.publish_many("pricing", dicts)
        rows.append({"what": f"EventBus.publish_many, {n} dicts (validation included)", "events": n,
                     "per_s": round(n / (time.monotonic() - t0))})
        seconds = pub.burst(n)
        rows.append({"what": f"EventBus.publish_many, {n} events validated beforehand", "events": n,
                     "per_s": round(n / seconds)})
    finally:
        pub.close()
    body = json.dumps(event_dict("PRICE_CHANGE", 1), separators=(",", ":"))
    client = redis.Redis.from_url(plan.redis_url)
    try:
        single = max(200, n // 10)
        t0 = time.monotonic()
        for _ in range(single):
            client.publish("bench:bare", body)
        rows.append({"what": "redis-py PUBLISH, one round trip each", "events": single,
                     "per_s": round(single / (time.monotonic() - t0))})
        t0 = time.monotonic()
        for start in range(0, n, 1000):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(1000, n - start)):
                pipe.publish("bench:bare", body)
            pipe.execute()
        rows.append({"what": "redis-py PUBLISH, pipelined by 1000", "events": n,
                     "per_s": round(n / (time.monotonic() - t0))})
    finally:
        client.close()
    rows += redis_benchmark(plan.redis_url, body, n * 5)
    clear_bench_keys(plan.redis_url)
    return rows


def redis_benchmark(redis_url: str, body: str, requests: int) -> list[dict[str, Any]]:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return [{"what": "redis-benchmark PUBLISH", "events": 0, "per_s": None, "note": "not installed"}]
    hostport = redis_url.split("://", 1)[1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    rows = []
    for pipeline in (1, 16):
        out = subprocess.run(
            [binary, "-h", host, "-p", port, "-n", str(requests), "-c", "50", "-P", str(pipeline), "--csv",
             "PUBLISH", "bench:bare", body],
            capture_output=True, text=True, timeout=60,
        ).stdout
        per_s = None
        for line in out.splitlines():  # its CSV does not quote the payload: count fields from the end
            parts = line.rsplit(",", 7)
            if len(parts) == 8 and parts[0].upper().startswith('"PUBLISH'):
                per_s = round(float(parts[1].strip('"')))
        rows.append({"what": f"redis-benchmark PUBLISH, 50 clients, pipeline {pipeline}", "events": requests,
                     "per_s": per_s})
    return rows
