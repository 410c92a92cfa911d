"""The longest modules first, so that parallel workers (pytest-xdist) finish together.

Workers take modules (``--dist loadscope``) from one queue in collection order. A minute-long
module taken last keeps the run going for a minute after the others are done; taken first, the
short ones fill the other workers meanwhile. The order: modules by the time their tests took in
the last run (kept in pytest's cache, ``.pytest_cache``), longest first; without a record, a test
marked ``slow`` counts 5 s. Every worker sorts the same collection with the same record, so all of
them agree on the order.
"""

from __future__ import annotations

import pytest

CACHE_KEY = "rakuda/durations"
UNRECORDED_SLOW_S = 5.0  # what a test marked slow is taken to last when the cache has no record of it


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def longest_first(config: pytest.Config, items: list[pytest.Item]) -> None:
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    known: dict[str, float] = cache.get(CACHE_KEY, {}) if cache is not None else {}
    modules: dict[str, float] = {}
    for item in items:
        guess = UNRECORDED_SLOW_S if item.get_closest_marker("slow") is not None else 0.0
        modules[item.location[0]] = modules.get(item.location[0], 0.0) + known.get(item.nodeid, guess)
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
