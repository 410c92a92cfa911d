"""Storing webhook deliveries durably, one INSERT and one COMMIT for all that arrive together.

PostgreSQL makes a COMMIT durable by flushing its write-ahead log to disk, which takes
milliseconds here: one commit per delivery caps a worker at (pool connections ÷ flush time).
So deliveries that arrive while a commit runs wait for the next one and go in together. One
writer at a time takes what is queued (up to ``max_batch``), inserts it with one statement,
commits, and wakes each request with its row id; it stops when nothing is queued, and the next
delivery starts another. A request answers only after the commit that holds its row.

Duplicates (the same provider and delivery id, or the same provider and body hash: the unique
constraints of ``webhook_events``) are skipped by ON CONFLICT DO NOTHING, whether the first copy
is already stored or in the same batch, and come back as ``None``. Any other failure is raised
in every request of the batch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.models import WebhookEvent, WebhookStatus, utcnow

MAX_BATCH = 500


@dataclass
class Delivery:
    """One delivery waiting to be stored; ``row_id`` None after ``done``: it was a duplicate."""

    provider: str
    delivery_id: str
    topic: str
    raw_body: str
    body_sha256: str
    headers: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    row_id: int | None = None
    error: BaseException | None = None

    def keys(self) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
        return ("id", self.provider, self.delivery_id), ("body", self.provider, self.body_sha256)


def first_copies(batch: list[Delivery]) -> list[Delivery]:
    """The deliveries of ``batch`` whose id and body no earlier one in it has (the others are duplicates)."""
    seen: set[tuple[str, str, str]] = set()
    firsts = []
    for delivery in batch:
        keys = delivery.keys()
        if not seen.intersection(keys):
            firsts.append(delivery)
        seen.update(keys)
    return firsts


class DeliveryStore:
    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queued: list[Delivery] = []
        self._writing = False

    def store(self, delivery: Delivery) -> int | None:
        """The new row's id once committed, or None for a duplicate; raises what the database raised."""
        with self._lock:
            self._queued.append(delivery)
            if not self._writing:
                self._writing = True
                threading.Thread(target=self._write_queued, name="webhook-store", daemon=True).start()
        delivery.done.wait()
        if delivery.error is not None:
            raise delivery.error
        return delivery.row_id

    def _write_queued(self) -> None:
        while True:
            with self._lock:
                if not self._queued:
                    self._writing = False
                    return
                batch, self._queued = self._queued[:self.max_batch], self._queued[self.max_batch:]
            try:
                self._insert(first_copies(batch))
            except BaseException as exc:  # every request of the batch answers 5xx with it
                for delivery in batch:
                    delivery.error = exc
            for delivery in batch:
                delivery.done.set()

    def _insert(self, deliveries: list[Delivery]) -> None:
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        now = utcnow()
        rows = [{"provider": d.provider, "delivery_id": d.delivery_id, "topic": d.topic, "raw_body": d.raw_body,
                 "body_sha256": d.body_sha256, "headers": d.headers, "status": WebhookStatus.PENDING,
                 "attempts": 0, "received_at": now} for d in deliveries]
        statement = (insert(WebhookEvent).values(rows).on_conflict_do_nothing()
                     .returning(WebhookEvent.id, WebhookEvent.provider, WebhookEvent.delivery_id))
        with self.engine.begin() as connection:
            stored: dict[tuple[str, str], Any] = {
                (provider, delivery_id): row_id
                for row_id, provider, delivery_id in connection.execute(statement)}
        for delivery in deliveries:
            delivery.row_id = stored.get((delivery.provider, delivery.delivery_id))
