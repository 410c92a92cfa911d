"""Concurrent webhook deliveries share one commit and one broker round trip, and each still gets its own answer."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from gateway.broker_gate import BrokerGate
from gateway.services import services_of
from gateway.task_client import make_task_client
from gateway.webhook_batches import GroupedCalls
from gateway.webhook_queue import ProcessingQueue, send_tasks
from gateway.webhook_store import Delivery, DeliveryStore
from shared.config import Settings
from shared.models import Order, WebhookEvent, WebhookStatus
from shared.redis_client import broker_url
from shared.task_names import WEBHOOK_PROCESS
from tasks.runtime import Runtime
from tests.pipeline import samples
from tests.pipeline.conftest import published_events
from tests.servers import free_port
from tests.waiting import eventually

JOOM_SECRET = "joom-test-secret"


def at_once(count: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(i)`` for i < count, each in its own thread, started together; what each returned or raised."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # handed to the test's asserts
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


class HeldFirstBatch:
    """Wraps the batch function of ``calls``: records each batch, and holds the first until all ``total`` calls
    are in it or queued behind it."""

    def __init__(self, calls: GroupedCalls[Any, Any], total: int) -> None:
        self.calls, self.total, self.run_batch = calls, total, calls.run_batch
        self.batches: list[list[Any]] = []
        self.first_taken = threading.Event()
        calls.run_batch = self

    def __call__(self, batch: list[Any]) -> list[Any]:
        if not self.batches:
            self.first_taken.set()
            eventually(lambda: len(batch) + self.calls.waiting() >= self.total, what=f"{self.total} calls queued")
        self.batches.append(batch)
        return self.run_batch(batch)

    def sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches]


def test_calls_that_arrive_during_a_batch_run_as_the_next_batch_each_with_its_own_result() -> None:
    calls: GroupedCalls[int, int] = GroupedCalls(lambda batch: [item * 10 for item in batch], 500, "test")
    held = HeldFirstBatch(calls, total=20)
    first: list[int] = []
    lone = threading.Thread(target=lambda: first.append(calls.call(0)))
    lone.start()
    assert held.first_taken.wait(timeout=10)
    assert at_once(19, lambda i: calls.call(i + 1)) == [(i + 1) * 10 for i in range(19)]
    lone.join(timeout=10)
    assert first == [0] and held.sizes() == [1, 19]


def test_a_failed_batch_raises_in_each_of_its_calls_and_the_next_batch_runs() -> None:
    def fail_on_three(batch: list[int]) -> list[int]:
        if 3 in batch:
            raise ValueError("three")
        return batch

    calls: GroupedCalls[int, int] = GroupedCalls(fail_on_three, max_batch=2, name="test")
    assert calls.call(1) == 1
    with pytest.raises(ValueError, match="three"):
        calls.call(3)
    assert calls.call(4) == 4 and calls.waiting() == 0


def test_concurrent_posts_share_a_commit_and_a_send_and_the_worker_applies_each(
        app_settings: Settings, runtime: Runtime, worker: Any, bus_redis: Any) -> None:
    from gateway.app import create_app

    app = create_app(app_settings)
    count = 12
    with app.app_context():
        from gateway.webhooks import _store

        store = _store()
    held_store = HeldFirstBatch(store.calls, total=count)
    queue = ProcessingQueue(make_task_client(app_settings))
    app.extensions["rakuda_processing_queue"] = queue
    held_sends = HeldFirstBatch(queue.calls, total=count - 1)  # the duplicate is not sent

    # Deliveries 10 and 11 are the same delivery id: one is stored, the other is a duplicate.
    def post(i: int) -> Any:
        raw = samples.encode(samples.joom(id=f"JO-B{i}"))
        delivery_id = f"batch-{min(i, 10)}"
        return app.test_client().post("/api/webhooks/joom", data=raw,
                                      headers=samples.joom_headers(raw, JOOM_SECRET, delivery_id))

    try:
        answers = at_once(count, post)
    finally:
        queue.client.close()
        services_of(app).close()
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [202] * (count - 1), [a.get_data(as_text=True) for a in answers]
    accepted = [answer.json for answer in answers if answer.status_code == 202]
    assert len({a["id"] for a in accepted}) == count - 1 and all(a["queued"] is True for a in accepted)
    # At most two commits for twelve deliveries, at most two broker round trips for eleven sends.
    assert len(held_store.sizes()) <= 2 and sum(held_store.sizes()) == count
    assert len(held_sends.sizes()) <= 2 and sum(held_sends.sizes()) == count - 1
    eventually(lambda: len(published_events(bus_redis, "ORDER_RECEIVED")) == count - 1, what="every delivery applied")
    with runtime.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == count - 1
        assert set(session.scalars(select(WebhookEvent.status))) == {WebhookStatus.COMPLETED}


def test_batched_sends_push_the_messages_send_task_pushes(settings: Settings) -> None:
    # send_tasks builds each message with Celery's parts, the route and the queue's declaration once per
    # batch: what reaches the broker must be what send_task sends, but for each message's own task id.
    client = make_task_client(settings)
    broker = redis.Redis.from_url(broker_url(settings))
    queue_name = client.conf.task_default_queue
    try:
        client.send_task(WEBHOOK_PROCESS, args=[7], retry=False)
        send_tasks(client, WEBHOOK_PROCESS, [[7], [8]])
        pushed = [json.loads(raw) for raw in reversed(broker.lrange(queue_name, 0, -1))]  # oldest first
    finally:
        client.close()
        broker.close()
    assert len(pushed) == 3
    ids = [message["headers"]["id"] for message in pushed]
    assert len(set(ids)) == 3
    for message, task_id in zip(pushed, ids, strict=True):
        assert message["headers"]["root_id"] == message["properties"]["correlation_id"] == task_id

    def without_ids(message: dict[str, Any]) -> dict[str, Any]:
        headers = {k: v for k, v in message["headers"].items() if k not in ("id", "root_id")}
        properties = {k: v for k, v in message["properties"].items() if k not in ("correlation_id", "delivery_tag")}
        return {**message, "headers": headers, "properties": properties}

    assert without_ids(pushed[1]) == without_ids(pushed[0])
    assert json.loads(base64.b64decode(pushed[2]["body"]))[0] == [8]
    assert pushed[2]["headers"]["argsrepr"] == "[8]"


def counting_broker_tries(queue: ProcessingQueue) -> list[int]:
    """A list that gets one entry each time ``queue`` reaches for the broker (acquires a producer for a batch;
    ``send_task`` acquires again with that producer given, which is not counted)."""
    tries: list[int] = []
    acquire = queue.client.producer_or_acquire

    def counted(producer: Any = None) -> Any:
        if producer is None:
            tries.append(1)
        return acquire(producer)

    queue.client.producer_or_acquire = counted  # type: ignore[method-assign]
    return tries


def test_with_the_broker_down_a_batch_fails_once_and_the_gate_refuses_the_next_at_once(app_settings: Settings) -> None:
    down = app_settings.replace(celery_broker_url=f"redis://127.0.0.1:{free_port()}/0")
    queue = ProcessingQueue(make_task_client(down), BrokerGate(retry_after_s=30.0))
    tries = counting_broker_tries(queue)
    try:
        assert queue.queue(1) is False and queue.gate.down
        started = time.monotonic()
        assert at_once(8, lambda i: queue.queue(100 + i)) == [False] * 8
        assert time.monotonic() - started < 1.0  # refused by the gate, not tried
    finally:
        queue.client.close()
    assert len(tries) == 1


def test_deliveries_queued_behind_a_failing_batch_are_refused_without_trying_again(app_settings: Settings) -> None:
    down = app_settings.replace(celery_broker_url=f"redis://127.0.0.1:{free_port()}/0")
    queue = ProcessingQueue(make_task_client(down), BrokerGate(retry_after_s=30.0))
    tries = counting_broker_tries(queue)
    held = HeldFirstBatch(queue.calls, total=6)  # the first batch starts once five more wait behind it
    try:
        assert at_once(6, lambda i: queue.queue(i)) == [False] * 6
    finally:
        queue.client.close()
    assert len(tries) == 1 and len(held.sizes()) <= 2


def test_a_store_batch_keeps_its_order_of_answers_across_duplicates(runtime: Runtime) -> None:
    store = DeliveryStore(runtime.db.engine)

    def delivery(delivery_id: str, body: str) -> Delivery:
        return Delivery(provider="joom", delivery_id=delivery_id, topic="order.created", raw_body=body,
                        body_sha256=f"sha-{body}", headers={})

    ids = store.store_batch([delivery("a", "1"), delivery("b", "2"), delivery("a", "3"), delivery("c", "2"),
                             delivery("d", "4")])
    assert ids[2] is None and ids[3] is None
    assert all(isinstance(row_id, int) for row_id in (ids[0], ids[1], ids[4])) and len(set(ids)) == 4
