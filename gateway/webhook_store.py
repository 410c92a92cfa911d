"""Storing webhook deliveries durably, one INSERT and one COMMIT for all that arrive together.

PostgreSQL makes a COMMIT durable by flushing its write-ahead log to disk, which takes
milliseconds here: one commit per delivery caps a worker at (pool connections ÷ flush time).
So the deliveries that arrive while a commit runs wait for the next one and go in together
(gateway/webhook_batches.py): up to ``max_batch`` at once, inserted with one executemany that
SQLAlchemy sends as multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` statements (its
"insertmanyvalues": compiled once, not per batch), and one COMMIT. A request answers only
after the commit that holds its row.

Duplicates (the same provider and delivery id, or the same provider and body hash: the unique
constraints of ``webhook_events``) come back as ``None``, whether the first copy is already
stored (skipped by ON CONFLICT) or earlier in the same batch (left out of the INSERT). Any
other failure is raised in every request of the batch, and nothing of that batch is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.webhook_batches import GroupedCalls
from shared.models import WebhookEvent, WebhookStatus, utcnow

MAX_BATCH = 500


@dataclass(frozen=True)
class Delivery:
    """One verified delivery, ready to be stored."""

    provider: str
    delivery_id: str
    topic: str
    raw_body: str
    body_sha256: str
    headers: dict[str, str]

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


def insert_skipping_duplicates(dialect: str) -> Insert:
    """``INSERT INTO webhook_events … ON CONFLICT DO NOTHING RETURNING id, provider, delivery_id``."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return (insert(WebhookEvent).on_conflict_do_nothing()
            .returning(WebhookEvent.id, WebhookEvent.provider, WebhookEvent.delivery_id))


class DeliveryStore:
    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self._statement = insert_skipping_duplicates(engine.dialect.name)
        self.calls: GroupedCalls[Delivery, int | None] = GroupedCalls(self.store_batch, max_batch, "webhook-store")

    def store(self, delivery: Delivery) -> int | None:
        """The new row's id once committed, or None for a duplicate; raises what the database raised."""
        return self.calls.call(delivery)

    def store_batch(self, batch: list[Delivery]) -> list[int | None]:
        """Insert and commit ``batch`` at once: each delivery's new row id, None for the duplicates."""
        firsts = first_copies(batch)
        now = utcnow()
        rows = [{"provider": d.provider, "delivery_id": d.delivery_id, "topic": d.topic, "raw_body": d.raw_body,
                 "body_sha256": d.body_sha256, "headers": d.headers, "status": WebhookStatus.PENDING,
                 "attempts": 0, "received_at": now} for d in firsts]
        with self.engine.begin() as connection:
            stored: dict[tuple[str, str], Any] = {
                (provider, delivery_id): row_id
                for row_id, provider, delivery_id in connection.execute(self._statement, rows)}
        first_ids = {id(delivery) for delivery in firsts}
        return [stored.get((d.provider, d.delivery_id)) if id(d) in first_ids else None for d in batch]
