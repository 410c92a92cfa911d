"""Calls from many concurrent requests served together: one runner takes what is queued and does it at once.

A request hands its item to ``GroupedCalls.call`` and waits. One runner at a time takes up to
``max_batch`` queued items, passes them to ``run_batch`` (one database commit, one broker round
trip, ...), and wakes each request with its own result; items that arrived meanwhile form the next
batch. The runner stops when nothing is queued, and the next call starts another. So a lone
request is served at once, and under load a batch grows to what arrived during the last one.

``run_batch`` returns one result per item, in order; if it raises, every request of that batch
raises the same exception. Threads here are greenlets under gunicorn's gevent worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Waiting(Generic[Item, Result]):
    """One queued item and, once its batch ran, its result or the batch's error."""

    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = threading.Event()
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupedCalls(Generic[Item, Result]):
    def __init__(self, run_batch: Callable[[list[Item]], list[Result]], max_batch: int, name: str) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.name = name
        self._lock = threading.Lock()
        self._queued: list[_Waiting[Item, Result]] = []
        self._running = False

    def call(self, item: Item) -> Result:
        """``item``'s result once the batch holding it ran; raises what that batch raised."""
        waiting: _Waiting[Item, Result] = _Waiting(item)
        with self._lock:
            self._queued.append(waiting)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run_queued, name=self.name, daemon=True).start()
        waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        return cast(Result, waiting.result)  # set before done when there is no error

    def waiting(self) -> int:
        """How many calls are queued for the next batch (not those of the batch running now)."""
        with self._lock:
            return len(self._queued)

    def _run_queued(self) -> None:
        while True:
            with self._lock:
                if not self._queued:
                    self._running = False
                    return
                batch, self._queued = self._queued[:self.max_batch], self._queued[self.max_batch:]
            try:
                results = self.run_batch([waiting.item for waiting in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: {len(results)} results for a batch of {len(batch)}")
                for waiting, result in zip(batch, results, strict=True):
                    waiting.result = result
            except BaseException as exc:  # every request of the batch gets it
                for waiting in batch:
                    waiting.error = exc
            for waiting in batch:
                waiting.done.set()
