"""Handing a stored webhook delivery to Celery by task name, through a gate that skips a broker known down.

The gateway never imports ``tasks``: it sends ``rakuda.webhooks.process`` by name with a Celery
app of its own that fails fast instead of waiting for the broker. A delivery that is not
queued (the broker failed, or failed a moment ago: gateway/broker_gate.py) stays PENDING in
the database and the periodic sweep queues it.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery
from flask import current_app

from gateway.broker_gate import BrokerGate
from gateway.services import services
from shared.task_names import WEBHOOK_PROCESS

log = logging.getLogger(__name__)

# Celery's producer pool (broker_pool_limit). Sends past it wait here rather than inside kombu,
# so that when the broker fails, the waiting ones see the gate closed and do not try it again.
SENDS_AT_ONCE = 10


def _task_client() -> Celery:
    """The app's Celery client (gateway/task_client.py): sends by name, fails fast when the broker is down."""
    return services().task_client


def _gate() -> tuple[BrokerGate, threading.BoundedSemaphore]:
    found = current_app.extensions.get("rakuda_broker_gate")
    if found is None:
        found = current_app.extensions["rakuda_broker_gate"] = (BrokerGate(), threading.BoundedSemaphore(SENDS_AT_ONCE))
    return found


def queue_processing(webhook_event_id: int) -> bool:
    """Send the processing task; False when the broker is unreachable (or was a moment ago): the sweep queues it."""
    gate, slots = _gate()
    with slots:
        if not gate.begin(time.monotonic()):
            log.debug("webhook event %s stored, not queued (the broker failed a moment ago); the sweep will queue it",
                      webhook_event_id)
            return False
        try:
            _task_client().send_task(WEBHOOK_PROCESS, args=[webhook_event_id], retry=False)
        except Exception as exc:  # kombu raises several kinds; the delivery is stored either way
            gate.failed(time.monotonic())
            log.warning("webhook event %s stored but not queued (broker: %s); the sweep will queue it and the "
                        "deliveries of the next %g s", webhook_event_id, exc, gate.retry_after_s)
            return False
    gate.succeeded()
    return True
