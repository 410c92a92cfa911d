"""What every scenario shares: the plan of a run, a system started and stopped around a body,
the profiler, and the waits on the load client's totals.

``bench.scenarios`` and the scenario modules of their own (``bench.pipeline``, ``bench.storm``)
import from here, so none of them imports another.
"""

from __future__ import annotations

import contextlib
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
    storm_steady_s: float = 5.0  # bench.storm: publishing before the restart...
    storm_settle_s: float = 3.0  # ...and the waits after it, for the new workers' CPU and the last events
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
                   notify_events=2000, notify_orders=50, storm_levels=[100], storm_restarts=["reload"],
                   storm_steady_s=1.5, storm_settle_s=1.5)


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


def py_spy() -> str | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return spy if Path(spy).exists() else None


def record_stacks(pid: int, out: Path, seconds: float | None = None) -> subprocess.Popen[bytes]:
    """py-spy ``pid`` at 200 Hz into ``out`` (raw, collapsed stacks) until SIGINT or ``seconds``."""
    spy = py_spy()
    assert spy is not None
    out.parent.mkdir(parents=True, exist_ok=True)
    limit = ["--duration", str(max(1, round(seconds)))] if seconds else []
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                             "--output", str(out), "--nonblocking", *limit],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def profiled(plan: Plan, system: System, label: str) -> Iterator[None]:
    """Record the server's stacks with py-spy (if ``plan.profile_dir``) while the body runs."""
    if not plan.profile_dir or py_spy() is None:
        yield
        return
    proc = record_stacks(system.worker_pid, Path(plan.profile_dir) / f"{label}.txt")
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
