"""The benchmark harness still runs end to end: every system, every scenario, a few hundred clients.

Speed is not asserted here (that is what the full run in docs/benchmarks.md is for); what is
asserted is that each system was started, loaded, measured and stopped, and that every
message the harness expected was counted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke_run_measures_every_system_and_scenario(redis_url: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--redis-url", redis_url, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| scenario" in proc.stdout
    results = json.loads(out.read_text())["results"]

    capacity = {r["system"]: r for r in results["capacity"]}
    assert set(capacity) == {"ceiling", "gateway", "flask-sse"}
    for row in capacity.values():
        assert row["held"] == row["clients"], row
    # Counted per process from /proc: a handful for the gateway, one per stream for flask-sse.
    assert 1 <= capacity["gateway"]["redis_connections"] < capacity["gateway"]["clients"] / 10
    assert capacity["flask-sse"]["redis_connections"] >= capacity["flask-sse"]["clients"]
    assert capacity["gateway"]["heartbeats"] > 0  # whether they were on time is the full run's question

    for row in results["fanout"]:
        assert row["messages"] == row["expected"], row
        assert row["msgs_per_s"] and row["cpu_s_per_100k"] is not None, row

    latency = results["latency"]
    assert {(r["system"], r["window_ms"]) for r in latency} == {
        ("ceiling", 0), ("gateway", 0), ("gateway", 200), ("flask-sse", 0)}
    for row in latency:
        assert row["events"] == row["events_expected"], row
        assert row["p99_ms"] is not None and row["p99_ms"] >= row["p50_ms"], row

    burst = {r["system"]: r for r in results["burst"]}
    assert burst["gateway"]["events_announced"] == burst["gateway"]["events_expected"]
    assert burst["gateway"]["msgs_per_client_min"] >= 1

    bus = {r["what"]: r["per_s"] for r in results["bus"]}
    assert all(rate for what, rate in bus.items() if not what.startswith("redis-benchmark")), bus

    # A gateway reload under 100 dashboards publishing 20 events/s: every one back, nothing lost
    # or delivered twice, no reset with Redis up (how fast is the full run's question).
    (storm,) = results["storm"]
    assert storm["connected_before"] == storm["clients"] == 100, storm
    assert storm["back"] == storm["clients"] and storm["resumed"] == storm["clients"], storm
    assert storm["published"] > 0 and storm["lost"] == 0 and storm["app_duplicates"] == 0, storm
    assert storm["resets"] == 0, storm


def test_webhook_intake_bench_loses_no_delivery_even_with_the_broker_down(tmp_path: Path) -> None:
    """Every signed delivery sent is answered 2xx and stored; with the broker down, the sweep queues each one."""
    out = tmp_path / "intake.json"
    proc = subprocess.run([sys.executable, "-m", "bench.webhook_intake", "--smoke", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {(r["system"], r["mode"]): r for r in json.loads(out.read_text())}
    assert set(rows) == {("ceiling", "closed"), ("ceiling", "open"), ("gateway", "closed"), ("gateway", "open"),
                         ("gateway", "open, broker down")}
    for row in rows.values():
        assert row["errors"] == 0 and row["accepted"] == row["sent"] == row["stored"] > 0, row
        assert row["p99_ms"] >= row["p50_ms"] > 0 and row["sender_cpu_pct"] > 0, row
    for mode in ("closed", "open"):
        assert rows[("gateway", mode)]["queued"] == rows[("gateway", mode)]["sent"]
    assert rows[("gateway", "open")]["queued_in_broker_all_runs"] == sum(
        rows[("gateway", mode)]["sent"] for mode in ("closed", "open"))
    outage = rows[("gateway", "open, broker down")]
    assert outage["queued"] == 0 and outage["sweeps"] >= 1
    assert outage["still_pending"] == 0 and outage["processed"] == outage["completed"] == outage["sent"]
