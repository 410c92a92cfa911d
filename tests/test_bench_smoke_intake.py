"""The webhook intake benchmark still runs end to end at the smallest scale, broker outage included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench_checks import ROOT


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
