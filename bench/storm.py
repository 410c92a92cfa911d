"""The ``storm`` scenario: N dashboards, a steady publish stream, a gateway restart, and who came back how.

The gateway runs as the Procfile's ``web`` line (one worker). Half the dashboards ask for every
channel, half for ``inventory,pricing``; events of the four types are published in turn at
``rate`` per second throughout. Then the gateway is restarted one of two ways:

- ``reload``: SIGHUP to the gunicorn master, as docs/resume-storm.md tells operators to deploy;
- ``restart``: SIGTERM to the master and the same command started again on the same port.

Reported per run: seconds from the signal until every dashboard is connected again and has had
its first message after the resume; resets; events lost (the publisher's ids on a stream's
channels that the stream never saw); duplicates seen on the wire and delivered to the application
(after the dashboard's bounded dedupe); the new worker's peak CPU (1 s samples); refusals by status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import procstat
from bench.events import CHANNEL_OF, TYPES, event_dict
from bench.harness import Plan, py_spy, record_stacks
from bench.stormclient import StormClient
from bench.systems import API_KEY, ROOT, clear_bench_keys, free_port, wait_healthy


class SteadyPublisher(threading.Thread):
    """The project's EventBus at ``rate`` events/s, types in turn; keeps every (bus id, channel)."""

    def __init__(self, redis_url: str, rate: float) -> None:
        super().__init__(daemon=True)
        from shared.config import Settings
        from shared.event_bus import EventBus

        self.bus = EventBus()
        self.bus.initialize(Settings.from_env({"REDIS_URL": redis_url, "REALTIME_HISTORY_MAX": "200000"}))
        self.rate = rate
        self.published: list[tuple[str, str]] = []
        self.failures = 0
        self.halt = threading.Event()

    def run(self) -> None:
        t0, i = time.monotonic(), 0
        while not self.halt.is_set():
            delay = t0 + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            event_type = TYPES[i % len(TYPES)]
            ident = self.bus.publish(CHANNEL_OF[event_type], event_dict(event_type, i))
            if ident:
                self.published.append((ident, CHANNEL_OF[event_type]))
            else:
                self.failures += 1
            i += 1

    def stop(self) -> list[tuple[str, str]]:
        self.halt.set()
        self.join(timeout=10)
        self.bus.close()
        return self.published


class WebLine:
    """The Procfile ``web`` line (one worker), run from ``root`` (this tree or an older one)."""

    def __init__(self, root: Path, redis_url: str, port: int, heartbeat_ms: int, log: Path) -> None:
        self.root, self.port, self.log_path = root, port, log
        self.env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1", "REDIS_URL": redis_url,
                    "API_KEYS": API_KEY, "SECRET_KEY": "bench-secret", "SSE_HEARTBEAT_INTERVAL": str(heartbeat_ms),
                    "SSE_DEBOUNCE_WINDOW": "0", "SSE_DEBOUNCE_WINDOWS": "", "SSE_MAX_CONNECTIONS": "19000",
                    "REALTIME_HISTORY_MAX": "200000", "SSE_MAX_STREAMS_PER_KEY": "40000",
                    "SSE_MAX_STREAMS_PER_ADDRESS": "40000", "SSE_NEW_STREAMS_PER_ADDRESS_RATE": "0",
                    "ACCESS_LOG": "/dev/null", "LOG_LEVEL": "warning", "PYTHONPATH": str(root)}
        self.masters: list[subprocess.Popen[bytes]] = []

    def start(self, wait: bool = True) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gateway/gunicorn_conf.py",
                                     "gateway.app:create_app()"], cwd=self.root, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.masters.append(proc)
        if wait:
            wait_healthy(f"http://127.0.0.1:{self.port}/api/health", proc, timeout=60)
        return proc

    @property
    def master(self) -> subprocess.Popen[bytes]:
        return self.masters[-1]

    def workers(self) -> list[int]:
        return [pid for m in self.masters if m.poll() is None for pid in procstat.children(m.pid)]

    def restart(self, how: str) -> None:
        if how == "reload":
            self.master.send_signal(signal.SIGHUP)
        else:
            self.master.send_signal(signal.SIGTERM)
            self.start(wait=False)

    def stop(self) -> None:
        for proc in self.masters:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


class NewWorkerCpu(threading.Thread):
    """Peak CPU (% of one core, 1 s samples) of the workers that were not there at the restart."""

    def __init__(self, web: WebLine, old: list[int], profile: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.web, self.old = web, set(old)
        self.profile = profile  # py-spy each new worker for 20 s from when it is first seen
        self.spies: list[subprocess.Popen[bytes]] = []
        self.peak_pct = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        before: dict[int, float] = {}
        while not self.halt.wait(1.0):
            for pid in self.web.workers():
                if pid in self.old:
                    continue
                with contextlib.suppress(OSError):
                    cpu = procstat.cpu_seconds(pid)
                    if pid in before:
                        self.peak_pct = max(self.peak_pct, 100 * (cpu - before[pid]))
                    elif self.profile is not None and py_spy() is not None:
                        self.spies.append(record_stacks(pid, self.profile.with_name(f"{self.profile.name}-{pid}.txt"),
                                                        seconds=20))
                    before[pid] = cpu

    def stop(self) -> float:
        self.halt.set()
        self.join(timeout=5)
        for spy in self.spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
        return round(self.peak_pct)


def run(redis_url: str, clients: int, how: str, *, root: Path = ROOT, port: int = 0, rate: float = 20.0,
        heartbeat_ms: int = 2000, processes: int = 4, steady_s: float = 5.0, settle_s: float = 3.0,
        limit_s: float = 60.0,
        log: Path | None = None, profile: Path | None = None) -> dict[str, Any]:
    """One storm; returns its row."""
    clear_bench_keys(redis_url)
    port = port or free_port()
    log = log or Path(f"/tmp/bench-storm-{os.getpid()}-{how}.log")
    web = WebLine(root, redis_url, port, heartbeat_ms, log)
    lc = StormClient(processes)
    publisher: SteadyPublisher | None = None
    row: dict[str, Any] = {"clients": clients, "restart": how, "rate": rate, "tree": str(root)}
    try:
        web.start()
        lc.open(port, "/api/realtime/events", clients, spread_s=max(1.0, clients / 1000), lazy=0.005)
        deadline = time.monotonic() + max(60.0, clients / 100)
        while (p := lc.progress())["live"] < clients and time.monotonic() < deadline:
            time.sleep(0.5)
        row["connected_before"] = p["live"]
        publisher = SteadyPublisher(redis_url, rate)
        publisher.start()
        time.sleep(steady_s)
        old = web.workers()
        t_restart = time.time()
        lc.ask("mark_restart", t_restart)
        cpu = NewWorkerCpu(web, old, profile)
        cpu.start()
        web.restart(how)
        deadline = time.monotonic() + limit_s
        timeline: list[tuple[float, int, int]] = []  # (s since the signal, streams live, clients back)
        while (p := lc.progress())["back"] < clients and time.monotonic() < deadline:
            timeline.append((round(time.time() - t_restart, 2), p["live"], p["back"]))
            time.sleep(0.25)
        row["timeline"] = timeline
        row["back"] = p["back"]
        row["all_back_s"] = round(p["last_back"] - t_restart, 2) if p["back"] >= clients else None
        row["last_back_s"] = round(p["last_back"] - t_restart, 2) if p["last_back"] else None
        time.sleep(settle_s)
        row["new_worker_peak_cpu_pct"] = cpu.stop()
        published = publisher.stop()
        publisher = None
        # A stream dropped again (slow, say) is still reconnecting: what it has not got yet is not lost
        # until it is back and caught up, so wait until every one is live, then for the last events.
        deadline = time.monotonic() + 30.0
        while (p := lc.progress())["live"] < clients and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(settle_s)
        p = lc.progress()
        row["live_at_check"] = p["live"]
        row.update(resumed=p["resumed_back"], resets=p["resets"], statuses=dict(p["statuses"]),
                   published=len(published), **lc.check(published))
        row["old_workers_left"] = sum(1 for pid in old if Path(f"/proc/{pid}").exists())
    finally:
        if publisher is not None:
            publisher.stop()
        lc.stop()
        web.stop()
    return row


def run_plan(plan: Plan) -> list[dict[str, Any]]:
    """Every level of ``plan.storm_levels`` with every way of ``plan.storm_restarts``."""
    tree = Path(plan.storm_tree) if plan.storm_tree else ROOT
    rows = []
    for clients in plan.storm_levels:
        for how in plan.storm_restarts:
            load = os.getloadavg()
            try:
                profile = Path(plan.profile_dir) / f"storm-{clients}-{how}" if plan.profile_dir else None
                row = run(plan.redis_url, clients, how, root=tree, rate=plan.storm_rate, heartbeat_ms=plan.heartbeat_ms,
                          processes=max(2, min(4, clients // 2000 + 1)), steady_s=plan.storm_steady_s,
                          settle_s=plan.storm_settle_s, profile=profile)
            except (TimeoutError, RuntimeError) as exc:  # the other runs still count; this one says why
                row = {"clients": clients, "restart": how, "error": str(exc)}
            print(f"  storm row: {row}", flush=True)
            row["load_before"] = [round(x, 2) for x in load]
            row["load_after"] = [round(x, 2) for x in os.getloadavg()]
            rows.append(row)
    return rows
