"""``python -m bench``: run the scenarios against every system and print one table.

    python -m bench                                  # full run, private redis-server
    python -m bench --smoke --redis-url redis://127.0.0.1:6379/14
    python -m bench --scenarios latency,burst --systems gateway
    python -m bench --scenarios storm --storm-levels 5000,10000   # a restart under N dashboards
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import report, scenarios
from bench.harness import Plan
from bench.loadclient import LoadClient, raise_nofile
from bench.systems import SYSTEMS, VARIANTS, PrivateRedis

ALL_SCENARIOS = ("capacity", "fanout", "latency", "burst", "bus")
# Not in the full run's default (it needs PostgreSQL, TEST_DATABASE_URL, and takes minutes at 50,000
# listings): run it by name. The smoke run includes it at 1,000 listings (~7 s).
EXTRA_SCENARIOS = ("pipeline", "notify", "storm")
# By name only, never in a smoke or full run: webhook intake (bench/webhook_intake.py, ~2 min, PostgreSQL).
ON_REQUEST_SCENARIOS = ("intake",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description="Run the benchmark scenarios against each system; print one table.")
    parser.add_argument("--smoke", action="store_true", help="a few hundred clients for a few seconds (CI)")
    parser.add_argument("--redis-url", help="Redis to use (default: start a private redis-server)")
    parser.add_argument("--systems", help="comma-separated, default all (smoke: ceiling,gateway,flask-sse): "
                        + ",".join(SYSTEMS))
    parser.add_argument("--scenarios", help="comma-separated, default all but pipeline (smoke: all): " + ",".join(
        ALL_SCENARIOS + EXTRA_SCENARIOS + ON_REQUEST_SCENARIOS))
    parser.add_argument("--capacity-levels", help="e.g. 1000,5000,10000,15000")
    parser.add_argument("--pipeline-listings", type=int, help="listings the pipeline scenario syncs (50000)")
    parser.add_argument("--latency", metavar="CLIENTS,RATE,SECONDS",
                        help="the latency scenario's steady state, e.g. 5000,20,15 (default 1000,100,8)")
    parser.add_argument("--latency-windows", help="debounce windows (ms) the gateway is measured with, e.g. 0")
    parser.add_argument("--storm-levels", help="dashboards per storm run, e.g. 5000,10000")
    parser.add_argument("--storm-restarts", help="reload (SIGHUP, the documented deploy), restart (SIGTERM + "
                        "start again) or both: reload,restart")
    parser.add_argument("--storm-tree", type=Path, help="run the storm's gateway from this tree (e.g. an older "
                        "commit's `git archive`), default this one")
    parser.add_argument("--json", type=Path, help="also write every raw figure to this file")
    parser.add_argument("--profile", metavar="DIR", help="py-spy each server while measured; stacks to DIR")
    return parser.parse_args(argv)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPU ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, RLIMIT_NOFILE {raise_nofile()}")


def tree_state() -> str:
    """The commit measured, and whether the gateway's files differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--short", "--", "gateway", "shared"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    changed = [line for line in dirty if line.strip()]
    return f"{head or '?'}" + (f" + {len(changed)} uncommitted change(s) in gateway/ or shared/" if changed else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    default = "ceiling,gateway,flask-sse" if args.smoke else ",".join(SYSTEMS)
    systems = [s for s in (args.systems or default).split(",") if s]
    default_scenarios = ALL_SCENARIOS + EXTRA_SCENARIOS if args.smoke else ALL_SCENARIOS
    chosen = [s for s in (args.scenarios or ",".join(default_scenarios)).split(",") if s]
    known = ALL_SCENARIOS + EXTRA_SCENARIOS + ON_REQUEST_SCENARIOS
    unknown = [s for s in systems if s not in SYSTEMS] + [s for s in chosen if s not in known]
    if unknown:
        print(f"unknown system or scenario: {', '.join(unknown)}", file=sys.stderr)
        return 2
    raise_nofile()  # before redis-server starts: it sizes maxclients from the limit it inherits
    private = None if args.redis_url else PrivateRedis().start()
    redis_url = args.redis_url or private.url  # type: ignore[union-attr]
    plan = (Plan.smoke if args.smoke else Plan)(redis_url, systems, chosen)
    plan.profile_dir = args.profile
    if args.capacity_levels:
        plan.capacity_levels = [int(n) for n in args.capacity_levels.split(",")]
    if args.pipeline_listings:
        plan.pipeline_listings = args.pipeline_listings
    if args.latency:
        clients, rate, seconds = args.latency.split(",")
        plan.latency_clients, plan.latency_rate, plan.latency_seconds = int(clients), float(rate), float(seconds)
    if args.latency_windows:
        plan.latency_windows = [int(w) for w in args.latency_windows.split(",")]
    if args.storm_levels:
        plan.storm_levels = [int(n) for n in args.storm_levels.split(",")]
    if args.storm_restarts:
        plan.storm_restarts = args.storm_restarts.split(",")
    if args.storm_tree:
        plan.storm_tree = str(args.storm_tree.resolve())
    started = time.time()
    print(f"# bench {'smoke' if args.smoke else 'full'} run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# machine: {machine()}")
    print(f"# redis: {'private redis-server' if private else redis_url}")
    print(f"# tree: {tree_state()}", flush=True)
    results: dict[str, list[dict[str, Any]]] = {}
    lc = LoadClient(plan.client_processes)
    try:
        for scenario in chosen:
            if scenario == "notify":
                from bench import notify

                results["notify"] = notify.run(redis_url, plan.notify_events, plan.notify_orders, plan.notify_rate)
                _progress("notify", results["notify"])
                continue
            if scenario == "intake":  # its own servers, schema and Redis; --smoke runs it at tiny scale
                from bench import webhook_intake

                results["intake"] = webhook_intake.run(webhook_intake.parse_args(["--smoke"] if args.smoke else []))
                _progress("intake", results["intake"])
                continue
            if scenario == "storm":
                from bench import storm

                results["storm"] = storm.run_plan(plan)
                _progress("storm", results["storm"])
                continue
            if scenario == "bus":
                results["bus"] = scenarios.bus(plan)
                _progress("bus", results["bus"])
                continue
            run = getattr(scenarios, scenario)
            results[scenario] = []
            for name in systems:  # alternate systems within each scenario
                if name in VARIANTS and scenario not in VARIANTS[name]:
                    continue
                t0, load = time.monotonic(), os.getloadavg()[0]
                rows = run(plan, lc, name)
                for row in rows:
                    row["load1_before"] = round(load, 2)
                results[scenario] += rows
                _progress(f"{scenario} {name} ({time.monotonic() - t0:.1f} s)", rows)
    finally:
        lc.stop()
        if private is not None:
            private.stop()
    print()
    print(report.render(report.build_rows(results), systems))
    print(f"\n# {time.time() - started:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "tree": tree_state(), "plan": vars(plan),
                                                   "results": results}, indent=1,
                                        default=str))
    return 0


def _progress(what: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        print(f"  {what}: {json.dumps(row, default=str)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
