"""Waiting in tests: poll a condition until it holds, instead of sleeping for a fixed time.

A test that waits for something to happen polls it with :func:`eventually`, which returns as
soon as the condition holds and fails, naming what it waited for and what it last saw, once the
timeout has passed. The timeout is the promise under test (or a generous bound on a noisy
machine), never a guess at how long things usually take.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> T:
    """Call ``predicate`` until it returns something truthy, and return that; fail after ``timeout`` s.

    An exception that ``predicate`` raises is not swallowed: a condition that cannot be evaluated
    is a failure, not a reason to keep waiting.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout}s: {what or predicate} (last: {value!r})")
        time.sleep(interval)

