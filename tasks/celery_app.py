"""The Celery app: its reliability settings, its beat schedule, and the tasks bound to a Runtime.

Reliability, chosen on purpose:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after
  its task finished, so a worker killed mid-task hands the task to another run. Every task
  is therefore idempotent (row locks + compare-before-change; marketplace calls keyed by SKU).
* ``worker_prefetch_multiplier = 1``: a worker holds one message per process, so a long batch
  never sits on messages another process could run.
* Transient errors (timeouts, 5xx, a deadlock) retry with exponential backoff and jitter,
  at most TASK_MAX_RETRIES times; then the record goes to its FAILED/ERROR state with the reason.
* Hard and soft time limits: a hung remote call cannot hold a worker forever.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Celery, Task
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared import task_names as names
from shared.config import Settings
from shared.redis_client import broker_transport_options, broker_url
from tasks import exchange_rates, inventory, price_sync, publishing, webhook_processing
from tasks.errors import PermanentError, TransientError
from tasks.metrics import install_task_metrics
from tasks.runtime import Runtime

log = logging.getLogger(__name__)


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


def backoff_seconds(settings: Settings, retries: int) -> float:
    """Exponential backoff with jitter: base x 2^n, capped, then scaled by a random 50-100%."""
    ceiling = min(settings.task_retry_backoff_max_s, settings.task_retry_backoff_s * 2.0 ** retries)
    return ceiling * random.uniform(0.5, 1.0)


class RakudaTask(Task[Any, Any]):
    """Base task: knows its Runtime and how to retry a transient failure."""

    abstract = True

    @property
    def runtime(self) -> Runtime:
        app = self.app
        if not isinstance(app, RakudaCelery):
            raise TypeError(f"task {self.name} runs only on a RakudaCelery app, not on {app!r}")
        return app.runtime

    def can_retry(self) -> bool:
        return self.request.retries < self.runtime.settings.task_max_retries

    def retry_later(self, exc: Exception, **kwargs: Any) -> Any:
        settings = self.runtime.settings
        raise self.retry(exc=exc, countdown=backoff_seconds(settings, self.request.retries),
                         max_retries=settings.task_max_retries, **kwargs)


class RakudaCelery(Celery[RakudaTask]):
    """A Celery app whose tasks reach the database, the bus and the remote clients through ``runtime``."""

    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        super().__init__("rakuda", broker=broker_url(settings), task_cls=RakudaTask, set_as_current=False)
        self.runtime = runtime


def create_celery(settings: Settings, runtime: Runtime | None = None) -> RakudaCelery:
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
    register_tasks(app)
    install_task_metrics(app)
    return app


def _send_batches(task: RakudaTask, name: str, ids: list[int], size: int) -> int:
    batches = [ids[i:i + size] for i in range(0, len(ids), size)]
    for batch in batches:
        task.app.send_task(name, args=[batch])
    return len(batches)


def register_tasks(app: RakudaCelery) -> None:
    """Register every task on ``app`` (not shared: each app, e.g. one per test, has its own)."""

    @app.task(name=names.INVENTORY_SWEEP, bind=True, base=RakudaTask, shared=False)
    def sweep_inventory(self: RakudaTask, /, everything: bool = False) -> int:
        """Queue the products due for a check, in batches of INVENTORY_BATCH_SIZE."""
        ids = inventory.due_product_ids(self.runtime, everything=everything)
        return _send_batches(self, names.INVENTORY_CHECK_BATCH, ids, self.runtime.settings.inventory_batch_size)

    @app.task(name=names.INVENTORY_CHECK_BATCH, bind=True, base=RakudaTask, shared=False)
    def check_inventory_batch(self: RakudaTask, /, product_ids: list[int]) -> dict[str, Any]:
        try:
            result = inventory.check_products(self.runtime, product_ids)
        except DBAPIError as exc:
            self.retry_later(exc)
        for listing_id in result.ended_listing_ids:
            self.app.send_task(names.LISTING_END, args=[listing_id])
        if result.retry_ids:
            if self.can_retry():
                self.retry_later(TransientError("; ".join(result.errors.values())), args=[result.retry_ids])
            log.error("gave up checking products %s: %s", result.retry_ids, result.errors)
        return {"checked": result.checked, "availability": result.availability_changes,
                "prices": result.price_changes}

    @app.task(name=names.LISTING_PUBLISH, bind=True, base=RakudaTask, shared=False)
    def publish_listing(self: RakudaTask, /, listing_id: int) -> str:
        rt = self.runtime
        job = publishing.begin_publish(rt, listing_id)
        if job is None:
            return "skipped"
        try:
            remote_id = rt.marketplace.create_listing(job.marketplace, job.sku, job.title, job.price, job.currency,
                                                      job.shipping_cost)
        except PermanentError as exc:
            publishing.fail_publish(rt, listing_id, str(exc))
            return "error"
        except TransientError as exc:
            if self.can_retry():
                self.retry_later(exc)
            publishing.fail_publish(rt, listing_id, f"gave up after {self.request.retries + 1} attempts: {exc}")
            return "error"
        publishing.finish_publish(rt, listing_id, remote_id)
        return "active"

    @app.task(name=names.LISTING_END, bind=True, base=RakudaTask, shared=False)
    def end_listing(self: RakudaTask, /, listing_id: int) -> str:
        rt = self.runtime
        target = publishing.ended_listing_target(rt, listing_id)
        if target is None:
            return "nothing to end"
        try:
            rt.marketplace.end_listing(*target)
        except TransientError as exc:
            if self.can_retry():
                self.retry_later(exc)
            publishing.record_end_failure(rt, listing_id, str(exc))
            return "error"
        except PermanentError as exc:
            publishing.record_end_failure(rt, listing_id, str(exc))
            return "error"
        return "ended"

    @app.task(name=names.PRICE_SYNC, bind=True, base=RakudaTask, shared=False)
    def sync_prices(self: RakudaTask, /) -> int:
        """Queue every ACTIVE listing for repricing, in batches of PRICE_SYNC_BATCH_SIZE."""
        ids = price_sync.active_listing_ids(self.runtime)
        return _send_batches(self, names.PRICE_SYNC_BATCH, ids, self.runtime.settings.price_sync_batch_size)

    @app.task(name=names.FX_REFRESH, bind=True, base=RakudaTask, shared=False)
    def refresh_exchange_rate(self: RakudaTask, /) -> dict[str, Any]:
        """Store the JPY→USD rate; a move of FX_REPRICE_THRESHOLD_PERCENT or more queues the price sync."""
        try:
            refresh = exchange_rates.refresh_rate(self.runtime, exchange_rates.rate_source(self.runtime))
        except TransientError as exc:
            if self.can_retry():
                self.retry_later(exc)
            raise
        if refresh.reprice:
            log.info("JPY->USD moved %.2f%% (%s -> %s): repricing", refresh.change_percent, refresh.previous,
                     refresh.rate)
            self.app.send_task(names.PRICE_SYNC)
        return {"rate": str(refresh.rate), "previous": None if refresh.previous is None else str(refresh.previous),
                "changePercent": refresh.change_percent, "repriced": refresh.reprice}

    @app.task(name=names.PRICE_SYNC_BATCH, bind=True, base=RakudaTask, shared=False)
    def sync_price_batch(self: RakudaTask, /, listing_ids: list[int]) -> dict[str, Any]:
        try:
            result = price_sync.sync_prices(self.runtime, listing_ids)
        except DBAPIError as exc:
            self.retry_later(exc)
        for marketplace, reason in result.refused_settings.items():
            log.error("listings on %s not repriced: %s", marketplace, reason)
        if result.retry_ids:
            if self.can_retry():
                self.retry_later(TransientError("; ".join(result.errors.values())), args=[result.retry_ids])
            log.error("gave up repricing listings %s: %s", result.retry_ids, result.errors)
        return {"examined": result.examined, "changed": result.changed, "refused": result.refused_settings}

    @app.task(name=names.WEBHOOK_PROCESS, bind=True, base=RakudaTask, shared=False)
    def process_webhook(self: RakudaTask, /, webhook_event_id: int) -> str:
        ended: list[int] = []
        try:
            outcome = webhook_processing.apply_webhook_event(self.runtime, webhook_event_id, ended)
        except (IntegrityError, DBAPIError) as exc:  # e.g. two deliveries creating one order at once
            self.retry_later(exc)
            raise
        for listing_id in ended:  # the product sold here: take its other listings down
            self.app.send_task(names.LISTING_END, args=[listing_id])
        return outcome

    @app.task(name=names.WEBHOOK_SWEEP, bind=True, base=RakudaTask, shared=False)
    def sweep_webhooks(self: RakudaTask, /) -> int:
        """Queue PENDING deliveries whose task was lost (broker down at receive time)."""
        ids = webhook_processing.stale_pending_ids(self.runtime, self.runtime.settings.webhook_sweep_after_s)
        for webhook_event_id in ids:
            self.app.send_task(names.WEBHOOK_PROCESS, args=[webhook_event_id])
        return len(ids)

    @app.task(name=names.OUTBOX_RELAY, bind=True, base=RakudaTask, shared=False)
    def relay_outbox(self: RakudaTask, /) -> int:
        """Publish events left unsent (Redis was down at commit); raises while Redis is still down."""
        return self.runtime.outbox.relay()

    @app.task(name=names.OUTBOX_PRUNE, bind=True, base=RakudaTask, shared=False)
    def prune_outbox(self: RakudaTask, /) -> int:
        """Delete outbox rows published more than a day ago."""
        return self.runtime.outbox.prune_sent()

    @app.task(name=names.DEMO_ORDERS, bind=True, base=RakudaTask, shared=False)
    def simulate_demo_orders(self: RakudaTask, /) -> int:
        from tasks import demo

        return demo.receive_sandbox_orders(self.runtime, self.app)
