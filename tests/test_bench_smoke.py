"""The benchmark harness still runs end to end: the streaming scenarios, every system, at the smallest
scale (the checks: tests/bench_checks.py; the other scenarios: tests/test_bench_smoke_pipeline.py
and tests/test_bench_smoke_intake.py, modules of their own so that they run side by side)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_checks import CHECKS, run_smoke


@pytest.mark.parametrize("scenarios", ["capacity,fanout", "latency,burst,bus"])
def test_bench_smoke_run_measures_every_system_and_scenario(scenarios: str, redis_url: str, tmp_path: Path) -> None:
    run_smoke(scenarios, redis_url, tmp_path)


def test_every_scenario_of_the_smoke_run_is_checked() -> None:
    from bench.__main__ import ALL_SCENARIOS, EXTRA_SCENARIOS
    from tests import test_bench_smoke_pipeline

    assert set(ALL_SCENARIOS + EXTRA_SCENARIOS) == set(CHECKS)
    groups = [test_bench_smoke_pipeline.GROUPS, ["capacity,fanout", "latency,burst,bus"]]
    assert sorted(s for group in groups for scenarios in group for s in scenarios.split(",")) == sorted(CHECKS)
