"""Spreading a reconnect storm: a per-client ``retry:``, and resumes served in arrival order.

After a restart every dashboard reconnects within a few seconds. Two things keep that from
turning into a pile-up:

* each stream is told its own reconnect delay, ``base + U(0, spread)`` ms, so the next storm
  (this worker's own restart) arrives spread over ``spread`` ms instead of in one burst;
* at most ``at_once`` resumes (resume check and replay) run at the same time; the others
  wait their turn in arrival order, already accepted, instead of competing for the CPU all
  together and being answered last-come-first or after their client gave up.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gevent.lock


def retry_for_client(base_ms: int, spread_ms: int, draw: Callable[[], float] = random.random) -> int:
    """The reconnect delay for one stream: ``base_ms`` plus a uniform share of ``spread_ms``."""
    if base_ms < 0 or spread_ms < 0:
        raise ValueError(f"retry base and spread must not be negative, got {base_ms}, {spread_ms}")
    return base_ms + round(spread_ms * draw())


class ResumeTurns:
    """At most ``at_once`` resumes in progress; later ones wait, first come first served."""

    def __init__(self, at_once: int) -> None:
        if at_once < 1:
            raise ValueError(f"at_once must be at least 1, got {at_once}")
        self._slots = gevent.lock.Semaphore(at_once)
        self.waiting = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        self.waiting += 1
        try:
            self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
