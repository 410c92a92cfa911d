"""Task run counts and durations, added to the cluster's all-time counters in Redis.

The gateway's ``/metrics`` exposes them as ``rakuda_task_runs_total{task,outcome}`` and
``rakuda_task_duration_seconds{task}``, so a worker needs no scrape endpoint of its own
(workers come and go; the counters stay). The field names and bucket edges are the ones
``gateway.prometheus`` reads.
"""

from __future__ import annotations

import bisect
import logging
import time
from typing import Any

import redis
from celery import Celery
from celery.signals import task_postrun, task_prerun

from shared.constants import METRICS_TOTALS, TASK_DURATION_EDGES_S

log = logging.getLogger(__name__)

_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}
_started: dict[str, float] = {}


def task_run_fields(task: str, outcome: str, seconds: float) -> dict[str, int]:
    """The counter increments one finished run adds (pure: the signal handlers do the I/O)."""
    bucket = bisect.bisect_left(TASK_DURATION_EDGES_S, seconds)
    return {
        f"task_runs:{task}:{outcome}": 1,
        f"task_duration_bucket:{task}:{bucket}": 1,
        f"task_duration_sum_us:{task}": int(seconds * 1e6),
    }


def record_run(client: redis.Redis, fields: dict[str, int]) -> None:
    pipe = client.pipeline(transaction=False)
    for name, amount in fields.items():
        pipe.hincrby(METRICS_TOTALS, name, amount)
    pipe.execute()


def _on_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


def _on_postrun(sender: Any = None, task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id or "", None)
    outcome = _OUTCOMES.get(state or "")
    runtime = getattr(getattr(sender, "app", None), "runtime", None)
    if started is None or outcome is None or runtime is None:
        return
    fields = task_run_fields(sender.name, outcome, time.monotonic() - started)
    try:
        record_run(runtime.bus.redis, fields)
    except redis.RedisError as exc:  # a metric is not worth failing a task for
        log.debug("task metrics not recorded: %s", exc)


def install_task_metrics(_app: Celery[Any]) -> None:
    """Count every task run of every Rakuda Celery app in this process (idempotent)."""
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="rakuda-task-metrics-prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="rakuda-task-metrics-postrun")
