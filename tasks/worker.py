"""The Celery app that ``celery -A tasks.worker worker`` and ``celery -A tasks.worker beat`` run.

Bound to the process settings (environment / ``.env``), the shared ``event_bus`` and ``db``.
Each forked worker process drops the connections it inherited (``worker_process_init``).
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from shared.config import get_settings
from shared.database import db
from shared.event_bus import event_bus
from shared.redis_client import warn_unless_noeviction
from tasks.celery_app import create_celery
from tasks.runtime import Runtime

settings = get_settings()
app = create_celery(settings, runtime=Runtime(settings, bus=event_bus, database=db))
app.set_current()


@worker_init.connect
def check_redis_policy(**_: Any) -> None:
    try:
        warn_unless_noeviction(event_bus.redis, "worker")
    finally:
        event_bus.close()  # the forked pool processes open their own


@worker_process_init.connect
def reconnect_after_fork(**_: Any) -> None:
    app.runtime.reset()  # type: ignore[attr-defined]


@worker_process_shutdown.connect
def close_connections(**_: Any) -> None:
    app.runtime.reset()  # type: ignore[attr-defined]
