"""The benchmark harness still runs end to end: the price sync through the outbox, the notifier, and the
reconnect storm after a reload, at the smallest scale (the checks: tests/bench_checks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_checks import run_smoke

GROUPS = ["pipeline,notify", "storm"]


@pytest.mark.parametrize("scenarios", GROUPS)
def test_bench_smoke_run_measures_every_system_and_scenario(scenarios: str, redis_url: str, tmp_path: Path) -> None:
    run_smoke(scenarios, redis_url, tmp_path)
