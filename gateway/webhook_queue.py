"""Handing stored webhook deliveries to Celery by task name: the sends that arrive together go in one round trip.

The gateway never imports ``tasks``: it sends ``rakuda.webhooks.process`` by name with a Celery
app of its own that fails fast instead of waiting for the broker. Requests that want a send
while one is under way wait for the next (gateway/webhook_batches.py): their messages are built
by Celery (``send_tasks``) and pushed with one Redis pipeline (kombu's ``Producer.batch``).

A delivery that is not queued stays PENDING in the database and the periodic sweep queues it.
That happens when its batch failed (every message of a failed batch counts as not queued; a
few may still have reached the broker, and a delivery is applied once whatever its number of
tasks), or when the broker failed a moment ago: then the gate (gateway/broker_gate.py) refuses
the delivery at once instead of letting it wait for a broker that does not answer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery
from celery.utils import uuid
from flask import current_app

from gateway.broker_gate import BrokerGate
from gateway.services import services
from gateway.webhook_batches import GroupedCalls
from shared.task_names import WEBHOOK_PROCESS

log = logging.getLogger(__name__)

# Messages per pipeline; requests past it wait for the next one.
MAX_BATCH = 500


class ProcessingQueue:
    """Sends ``rakuda.webhooks.process`` for many stored deliveries at once, through the broker gate.

    The gate is asked per delivery, before it queues: while the broker is known down a delivery
    is refused at once rather than waiting behind a batch, and the one delivery that the gate
    lets through as its trial goes alone. Deliveries that the gate let through before a batch
    failed, and that were still queued behind it, are refused without trying the broker again.
    """

    def __init__(self, client: Celery, gate: BrokerGate | None = None, max_batch: int = MAX_BATCH) -> None:
        self.client = client
        self.gate = gate or BrokerGate()
        # Each item: (webhook event id, whether the gate let it through as the trial of a broker known down).
        self.calls: GroupedCalls[tuple[int, bool], bool] = GroupedCalls(self.send_batch, max_batch, "webhook-queue")

    def queue(self, webhook_event_id: int) -> bool:
        """Whether the processing task reached the broker (False: the sweep queues it)."""
        trial = self.gate.down
        if not self.gate.begin(time.monotonic()):
            log.debug("webhook event %s stored, not queued (the broker failed a moment ago); the sweep will "
                      "queue it", webhook_event_id)
            return False
        return self.calls.call((webhook_event_id, trial))

    def send_batch(self, batch: list[tuple[int, bool]]) -> list[bool]:
        if self.gate.down and not any(trial for _, trial in batch):
            return [False] * len(batch)  # let through before the failure of the batch ahead of them
        try:
            send_tasks(self.client, WEBHOOK_PROCESS, [[webhook_event_id] for webhook_event_id, _ in batch])
        except Exception as exc:  # kombu raises several kinds; the deliveries are stored either way
            self.gate.failed(time.monotonic())
            log.warning("%d webhook events stored but not queued (broker: %s); the sweep will queue them and "
                        "the deliveries of the next %g s", len(batch), exc, self.gate.retry_after_s)
            return [False] * len(batch)
        self.gate.succeeded()
        return [True] * len(batch)


def send_tasks(client: Celery, name: str, arg_lists: list[list[Any]]) -> None:
    """One ``name`` task per argument list, pushed to the broker in one round trip; raises what kombu raised.

    The messages are the ones ``client.send_task(name, args, retry=False)`` sends (tests/pipeline/
    test_webhook_batching.py compares them), built and sent by Celery's own ``create_task_message``
    and ``send_task_message``. What ``send_task`` would redo for each message is done once for the
    batch: the route (``task_routes``, else the default queue) and the queue's declaration, which
    kombu otherwise looks up again with every message. Nothing of a parent task or a result
    backend applies: the gateway's client runs no task and has no backend.
    """
    amqp = client.amqp
    route = amqp.router.route({}, name, (), {})
    queue = route.get("queue")
    with client.producer_or_acquire() as producer, producer.batch(max_size=len(arg_lists)):
        if queue is not None:
            producer.maybe_declare(queue)
        for args in arg_lists:
            task_id = uuid()
            message = amqp.create_task_message(task_id, name, args, {}, reply_to=client.thread_oid,
                                                ignore_result=None)  # as send_task: the task decides
            amqp.send_task_message(producer, name, message, retry=False, declare=[], **route)


def _processing_queue() -> ProcessingQueue:
    found = current_app.extensions.get("rakuda_processing_queue")
    if found is None:
        found = current_app.extensions["rakuda_processing_queue"] = ProcessingQueue(services().task_client)
    return found


def queue_processing(webhook_event_id: int) -> bool:
    """Send the processing task; False when the broker is unreachable (or was a moment ago): the sweep queues it."""
    return _processing_queue().queue(webhook_event_id)
