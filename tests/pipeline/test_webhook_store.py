"""Deliveries stored together share one commit; each gets its own row id, a duplicate None, a failure raises."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from gateway.webhook_store import Delivery, DeliveryStore
from shared.models import WebhookEvent, WebhookStatus
from tasks.runtime import Runtime


def delivery(delivery_id: str, body: str | None = None) -> Delivery:
    return Delivery(provider="joom", delivery_id=delivery_id, topic="order.created", raw_body=body or delivery_id,
                    body_sha256=f"sha-{body or delivery_id}", headers={"X-Joom-Delivery-Id": delivery_id})


def store_at_once(store: DeliveryStore, deliveries: list[Delivery]) -> list[int | None | BaseException]:
    """Store each delivery from its own thread, all started together; what each got back."""
    results: list[int | None | BaseException] = [None] * len(deliveries)
    start = threading.Barrier(len(deliveries))

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = store.store(deliveries[i])
        except BaseException as exc:  # noqa: BLE001 - handed to the test's asserts
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(deliveries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def stored_rows(runtime: Runtime) -> list[WebhookEvent]:
    with runtime.db.transaction() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def test_concurrent_deliveries_get_their_own_rows_and_duplicates_get_none(runtime: Runtime) -> None:
    store = DeliveryStore(runtime.db.engine)
    assert store.store(delivery("d-old")) is not None
    batch = [delivery(f"d-{i}") for i in range(30)] + [
        delivery("d-0"),                   # the same id as one in the batch
        delivery("d-new", body="d-1"),     # the same body as one in the batch, under a new id
        delivery("d-old"),                 # stored before
        delivery("d-other", body="d-old"),  # a body stored before
    ]
    results = store_at_once(store, batch)
    ids = [row_id for row_id in results if isinstance(row_id, int)]
    assert len(ids) == len(set(ids)) == 30 and not [r for r in results if isinstance(r, BaseException)]
    # Which copy of d-0 / d-1 came first is the race's; exactly one of each pair is stored.
    for first, copy in ((0, 30), (1, 31)):
        assert sorted([results[first] is None, results[copy] is None]) == [False, True]
    assert results[32] is None and results[33] is None
    rows = stored_rows(runtime)
    assert len(rows) == 31
    assert {row.status for row in rows} == {WebhookStatus.PENDING} and all(row.attempts == 0 for row in rows)
    assert {row.id for row in rows} >= set(ids)


def test_a_database_error_is_raised_in_the_requests_of_its_batch_and_stores_nothing_of_it(runtime: Runtime) -> None:
    store = DeliveryStore(runtime.db.engine)
    too_long = delivery("x" * 200)  # the column holds 128 characters
    with pytest.raises(DBAPIError):
        store.store(too_long)
    assert store.store(delivery("d-after")) is not None  # the next batch is written as usual
    with runtime.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 1
