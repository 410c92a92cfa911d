"""What the smoke runs of the benchmark must show: each system was started, loaded, measured and
stopped, and every message the harness expected was counted (speed is the full run's question,
docs/benchmarks.md). The scenarios run in groups, each a run of its own, in the modules
tests/test_bench_smoke*.py, so that a failure names its group and the groups run side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The smoke plan's sizes, shrunk further where the command line allows: 100 streams per system for
# capacity and latency, 1 s of steady latency load, 200 listings synced, 20 dashboards in the storm.
SMALLEST = ["--capacity-levels", "100", "--latency", "100,50,1", "--latency-windows", "0,200",
            "--pipeline-listings", "200", "--storm-levels", "20"]
STORM_CLIENTS = 20
Results = dict[str, list[dict[str, Any]]]


def check_capacity(results: Results) -> None:
    capacity = {r["system"]: r for r in results["capacity"]}
    assert set(capacity) == {"ceiling", "gateway", "flask-sse"}
    for row in capacity.values():
        assert row["held"] == row["clients"], row
    # Counted per process from /proc: a handful for the gateway, one per stream for flask-sse.
    assert 1 <= capacity["gateway"]["redis_connections"] < capacity["gateway"]["clients"] / 10
    assert capacity["flask-sse"]["redis_connections"] >= capacity["flask-sse"]["clients"]
    assert capacity["gateway"]["heartbeats"] > 0  # whether they were on time is the full run's question


def check_fanout(results: Results) -> None:
    for row in results["fanout"]:
        assert row["messages"] == row["expected"], row
        assert row["msgs_per_s"] and row["cpu_s_per_100k"] is not None, row


def check_latency(results: Results) -> None:
    latency = results["latency"]
    assert {(r["system"], r["window_ms"]) for r in latency} == {
        ("ceiling", 0), ("gateway", 0), ("gateway", 200), ("flask-sse", 0)}
    for row in latency:
        assert row["events"] == row["events_expected"], row
        assert row["p99_ms"] is not None and row["p99_ms"] >= row["p50_ms"], row


def check_burst(results: Results) -> None:
    burst = {r["system"]: r for r in results["burst"]}
    assert burst["gateway"]["events_announced"] == burst["gateway"]["events_expected"]
    assert burst["gateway"]["msgs_per_client_min"] >= 1


def check_bus(results: Results) -> None:
    bus = {r["what"]: r["per_s"] for r in results["bus"]}
    assert all(rate for what, rate in bus.items() if not what.startswith("redis-benchmark")), bus


def check_pipeline(results: Results) -> None:
    (row,) = results["pipeline"]
    assert row["listings"] == 200 and row["events"] == row["events_expected"] > 0, row
    assert row["outbox_published"] == row["outbox_rows"] > 0, row


def check_notify(results: Results) -> None:
    rows = {r["what"]: r["per_s"] for r in results["notify"]}
    assert rows["orders delivered / published"] == "50/50", rows
    assert all(rate for what, rate in rows.items()), rows


def check_storm(results: Results) -> None:
    # A gateway reload under dashboards publishing 20 events/s: every one back, nothing lost
    # or delivered twice, no reset with Redis up (how fast is the full run's question).
    (storm,) = results["storm"]
    assert storm["connected_before"] == storm["clients"] == STORM_CLIENTS, storm
    assert storm["back"] == storm["clients"] and storm["resumed"] == storm["clients"], storm
    assert storm["published"] > 0 and storm["lost"] == 0 and storm["app_duplicates"] == 0, storm
    assert storm["resets"] == 0, storm


CHECKS: dict[str, Callable[[Results], None]] = {
    "capacity": check_capacity, "fanout": check_fanout, "latency": check_latency, "burst": check_burst,
    "bus": check_bus, "pipeline": check_pipeline, "notify": check_notify, "storm": check_storm,
}




def run_smoke(scenarios: str, redis_url: str, tmp_path: Path) -> None:
    """``python -m bench --smoke`` over ``scenarios`` at the smallest scale; every scenario's figures checked."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--scenarios", scenarios, *SMALLEST, "--redis-url", redis_url,
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| scenario" in proc.stdout
    results = json.loads(out.read_text())["results"]
    assert set(results) == set(scenarios.split(","))
    for scenario in results:
        CHECKS[scenario](results)
