"""The longest modules first, so that parallel workers (pytest-xdist) finish together.

Workers take modules (``--dist loadscope``) from one queue in collection order. A minute-long
module taken last keeps the run going for a minute after the others are done; taken first, the
short ones fill the other workers meanwhile. The order: modules by the time their tests took in
the last run (kept in pytest's cache, ``.pytest_cache``), longest first. Without pytest's cache
(CI runs with ``-p no:cacheprovider``) the committed record ``tests/durations.json`` (seconds per
module) gives the order; a module in neither counts 5 s per test marked ``slow``. Every worker
sorts the same collection with the same record, so all of them agree on the order.

``python -m tests.ordering LOG`` rewrites ``tests/durations.json`` from the output of a run with
``--durations=0``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

CACHE_KEY = "rakuda/durations"
UNRECORDED_SLOW_S = 5.0  # what a test marked slow is taken to last when no record has it
MODULE_RECORD = Path(__file__).with_name("durations.json")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _committed_module_seconds() -> dict[str, float]:
    try:
        return {module: float(seconds) for module, seconds in json.loads(MODULE_RECORD.read_text()).items()}
    except (OSError, ValueError):
        return {}


def longest_first(config: pytest.Config, items: list[pytest.Item]) -> None:
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    known: dict[str, float] = cache.get(CACHE_KEY, {}) if cache is not None else {}
    committed = _committed_module_seconds()
    by_module: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_module.setdefault(item.location[0], []).append(item)
    modules: dict[str, float] = {}
    for module, tests in by_module.items():
        if any(test.nodeid in known for test in tests):
            modules[module] = sum(known.get(test.nodeid, 0.0) for test in tests)
        elif module in committed:
            modules[module] = committed[module]
        else:
            modules[module] = sum(UNRECORDED_SLOW_S for test in tests if test.get_closest_marker("slow") is not None)
    # Whole modules, the longest first; a module's tests stay together and in their order.
    items.sort(key=lambda item: -modules[item.location[0]])  # stable: collection order among equals


class DurationRecord:
    """Each test's setup + call + teardown time in this run, saved for the next one's order."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cache = getattr(session.config, "cache", None)
        if cache is None or not self.durations:
            return
        record = cache.get(CACHE_KEY, {})
        record.update({nodeid: round(seconds, 2) for nodeid, seconds in self.durations.items()})
        cache.set(CACHE_KEY, record)


def register(config: pytest.Config) -> None:
    """Record durations in the process that sees every test's report (not in an xdist worker)."""
    if not _is_worker(config) and config.pluginmanager.has_plugin("cacheprovider"):
        config.pluginmanager.register(DurationRecord(), "rakuda-duration-record")


def module_seconds_from_log(text: str) -> dict[str, float]:
    """Seconds per module (setup + call + teardown) from the lines of pytest's ``--durations=0``."""
    modules: dict[str, float] = {}
    for match in re.finditer(r"^\s*([\d.]+)s (?:setup|call|teardown)\s+([^\s:]+)::", text, re.M):
        modules[match.group(2)] = modules.get(match.group(2), 0.0) + float(match.group(1))
    return {module: round(seconds, 1) for module, seconds in sorted(modules.items(), key=lambda kv: -kv[1])}


if __name__ == "__main__":
    record = module_seconds_from_log(Path(sys.argv[1]).read_text())
    MODULE_RECORD.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{MODULE_RECORD}: {len(record)} modules, {sum(record.values()):.0f} s in all")
