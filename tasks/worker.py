"""The Celery app that ``celery -A tasks.worker worker`` and ``celery -A tasks.worker beat`` run.

Bound to the process settings (environment / ``.env``), the shared ``event_bus`` and ``db``.
Each forked worker process drops the connections it inherited (``worker_process_init``); the
garbage collector is set for batch work before the pool forks (``tasks/gc_tuning.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

from shared.config import get_settings
from shared.database import db
from shared.event_bus import event_bus
from shared.logs import use_format
from shared.production import refuse_to_start_if_unsafe
from shared.redis_client import warn_unless_noeviction
from tasks.celery_app import create_celery
from tasks.gc_tuning import tune_for_batches
from tasks.runtime import Runtime

settings = get_settings()
refuse_to_start_if_unsafe(settings)  # worker and beat: RAKUDA_ENV=production needs strong secrets
app = create_celery(settings, runtime=Runtime(settings, bus=event_bus, database=db))
app.set_current()


@worker_init.connect
def tune_garbage_collection(**_: Any) -> None:
    """Before the pool forks: its processes inherit the frozen start-up objects and the thresholds."""
    tune_for_batches()


@worker_init.connect
def check_redis_policy(**_: Any) -> None:
    event_bus.initialize(settings)
    try:
        warn_unless_noeviction(event_bus.redis, "worker")
    finally:
        event_bus.close()  # the forked pool processes open their own


@worker_process_init.connect
def reconnect_after_fork(**_: Any) -> None:
    app.runtime.reset()


@worker_process_shutdown.connect
def close_connections(**_: Any) -> None:
    app.runtime.reset()


@after_setup_logger.connect
@after_setup_task_logger.connect
def log_in_the_chosen_format(logger: logging.Logger | None = None, **_: Any) -> None:
    """LOG_FORMAT=json: the worker's and beat's lines are JSON objects too."""
    if logger is not None and settings.log_format == "json":
        use_format("json", logger.handlers)
