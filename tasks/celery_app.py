"""The Celery app: its reliability settings, its beat schedule, and the tasks bound to a Runtime.

Each task lives beside its domain (``tasks/inventory.py``, ``tasks/publishing.py``...).

Reliability, chosen on purpose:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after
  its task finished, so a worker killed mid-task hands the task to another run. Every task
  is therefore idempotent (row locks + compare-before-change; marketplace calls keyed by SKU).
* ``worker_prefetch_multiplier = 1``: a worker holds one message per process, so a long batch
  never sits on messages another process could run.
* Transient errors (timeouts, 5xx, a deadlock) retry with exponential backoff and jitter,
  at most TASK_MAX_RETRIES times (Celery's ``autoretry_for``, see :mod:`tasks.registry`);
  then the record goes to its FAILED/ERROR state with the reason.
* Hard and soft time limits: a hung remote call cannot hold a worker forever.
"""

from __future__ import annotations

from typing import Any

from shared import task_names as names
from shared.config import Settings
from shared.redis_client import broker_transport_options
from tasks import demo, exchange_rates, inventory, outbox, price_sync, publishing, webhook_processing
from tasks.metrics import install_task_metrics
from tasks.registry import RakudaCelery, register_tasks
from tasks.runtime import Runtime

# The modules whose ``@task`` functions the app runs (importing them declares their tasks).
TASK_MODULES = (inventory, publishing, price_sync, exchange_rates, webhook_processing, outbox, demo)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Periodic tasks from the *_INTERVAL settings; an interval of 0 turns that entry off."""
    entries = {
        "inventory-sweep": (names.INVENTORY_SWEEP, settings.inventory_check_interval_s),
        "price-sync": (names.PRICE_SYNC, settings.price_sync_interval_s),
        "fx-refresh": (names.FX_REFRESH, settings.fx_rate_interval_s),
        "outbox-relay": (names.OUTBOX_RELAY, settings.outbox_relay_interval_s),
        "outbox-prune": (names.OUTBOX_PRUNE, 3600.0 if settings.outbox_relay_interval_s > 0 else 0.0),
        "webhook-sweep": (names.WEBHOOK_SWEEP, settings.webhook_sweep_interval_s),
        "demo-orders": (names.DEMO_ORDERS, settings.demo_orders_interval_s),
    }
    return {
        key: {"task": task, "schedule": interval, "options": {"expires": max(interval, 1.0)}}
        for key, (task, interval) in entries.items() if interval > 0
    }


def transport_options(settings: Settings) -> dict[str, Any]:
    """Redis broker: a message a dead worker held comes back after CELERY_VISIBILITY_TIMEOUT.

    kombu scans for such messages every interval x throttle seconds (100 s by default); keep
    the scan well inside the timeout so a short timeout (tests, impatient operators) is honoured.
    """
    timeout = settings.celery_visibility_timeout_s
    return {"visibility_timeout": timeout, "unacked_restore_interval": max(1, min(10, timeout // 2)),
            "unacked_restore_throttle": 1 if timeout < 300 else 10, **broker_transport_options(settings)}


def create_celery(settings: Settings, runtime: Runtime | None = None) -> RakudaCelery:
    """The app with every task of TASK_MODULES registered, bound to ``runtime`` (one for ``settings`` by default)."""
    app = RakudaCelery(settings, runtime or Runtime(settings))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_time_limit=600,
        task_soft_time_limit=540,
        task_default_queue="rakuda",
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(settings),
        worker_send_task_events=False,
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
    )
    register_tasks(app, settings)
    install_task_metrics(app)
    return app
