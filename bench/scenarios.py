"""The benchmark scenarios, each one function: start a system, load it, measure, stop it.

Each returns plain dicts (one per system and level) that ``bench.report`` turns into the
table. Systems are measured one after the other within a scenario, so that every
comparison comes from the same minute of the same run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import redis

from bench import procstat
from bench.events import event_dict
from bench.harness import PeakRss, Plan, open_streams, profiled, running, wait_for
from bench.loadclient import LoadClient
from bench.pipeline import pipeline as run_pipeline
from bench.systems import clear_bench_keys

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
    return run_pipeline(plan, lc, name)


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
