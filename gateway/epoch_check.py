"""The history's current epoch for a crowd of resumes: one Redis read answers all who wait.

A resume from memory must still know that Redis has not lost its data since (a new epoch
means the ids before it are void). Asking Redis once per resume is what a reconnect storm
cannot afford, so reads are shared: a caller joins the next read that starts after it
arrived, never one already in flight (that one may predate its question). Thousands of
callers at once cost two round trips, not thousands.
"""

from __future__ import annotations

from collections.abc import Callable

import gevent
import gevent.event


class SharedEpochCheck:
    """``current()`` returns the epoch read by a read that started after the call; errors propagate."""

    def __init__(self, read: Callable[[], str]) -> None:
        self._read = read
        self._next: gevent.event.AsyncResult | None = None  # the round not started yet
        self._running = False
        self.reads = 0

    def current(self) -> str:
        waiter = self._next
        if waiter is None:
            waiter = self._next = gevent.event.AsyncResult()
            if not self._running:
                self._running = True
                gevent.spawn(self._run_rounds)
        result: str = waiter.get()
        return result

    def _run_rounds(self) -> None:
        try:
            while self._next is not None:
                this_round, self._next = self._next, None
                self.reads += 1
                try:
                    this_round.set(self._read())
                except Exception as exc:  # handed to every caller of this round
                    this_round.set_exception(exc)
        finally:
            self._running = False
