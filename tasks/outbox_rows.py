"""Outbox rows: stored with the change's transaction, then taken from ``outbox_unsent`` to be published.

On PostgreSQL each step is one statement (ids taken from the table's sequence first, so that
the stored JSON already carries ``data.outboxId``; the rows written with one COPY; the unsent
ids taken by id array); elsewhere, row by row. A row is unsent while its id is in
``outbox_unsent`` (a trigger puts it there on insert); taking it deletes that id, so claiming a
row for publishing and marking it sent are one write of a narrow row, committed or rolled back
with the publish.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from shared.constants import CHANNEL_TYPES, TYPE_CHANNELS
from shared.models import OutboxEvent, OutboxUnsent, utcnow
from shared.realtime import EncodedEvent, RealTimeEvent, compact_json


class StoredEvent(NamedTuple):
    """An outbox row as the publisher needs it: its id, its channel and the event to publish."""

    id: int
    channel: str
    event: EncodedEvent


def store(session: Session, postgresql: bool, events: list[RealTimeEvent]) -> list[StoredEvent]:
    """Insert ``events`` (validated where they were made) as outbox rows in ``session``'s transaction.

    On PostgreSQL: one statement for the ids (the sequence's next values), one COPY for the rows.
    """
    if not events:
        return []
    now = utcnow()
    if not postgresql:
        return [_store_one(session, event, now) for event in events]
    ids = session.execute(text("SELECT nextval(pg_get_serial_sequence('outbox_events', 'id')) "
                               "FROM generate_series(1, :n)"), {"n": len(events)}).scalars().all()
    stored = [StoredEvent(row_id, TYPE_CHANNELS[event.type.value], event.encoded({"outboxId": row_id}))
              for row_id, event in zip(ids, events, strict=True)]
    copy_rows(session, stored, now)
    return stored


def copy_rows(session: Session, stored: list[StoredEvent], now: datetime) -> None:
    """The rows with COPY (text format: a backslash in the JSON is doubled; JSON has no raw tab or newline)."""
    created = now.isoformat()
    data = "".join(f"{row.id}\t{row.channel}\t{row.event.json.replace(chr(92), chr(92) * 2)}\t{created}\n"
                   for row in stored)
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert("COPY outbox_events (id, channel, event_json, created_at) FROM STDIN", io.StringIO(data))
    finally:
        cursor.close()


def _store_one(session: Session, event: RealTimeEvent, now: datetime) -> StoredEvent:
    """One row, then its JSON once its id is known (databases without sequences)."""
    channel = TYPE_CHANNELS[event.type.value]
    row_id = session.scalars(insert(OutboxEvent).values(channel=channel, event_json="", created_at=now)
                             .returning(OutboxEvent.id)).one()
    encoded = event.encoded({"outboxId": row_id})
    session.execute(update(OutboxEvent).where(OutboxEvent.id == row_id).values(event_json=encoded.json))
    return StoredEvent(row_id, channel, encoded)


def stored_event(row_id: int, channel: str, event_json: str) -> StoredEvent:
    """A row read back for the relay: its JSON is published as stored (validated when it was made).

    Rows written without ``data.outboxId`` in their JSON get it added here.
    """
    if '"outboxId":' not in event_json:
        event = json.loads(event_json)
        event["payload"]["data"] = {**(event["payload"].get("data") or {}), "outboxId": row_id}
        event_json = compact_json(event)
    return StoredEvent(row_id, channel, EncodedEvent(CHANNEL_TYPES[channel], event_json))


def take_unsent(session: Session, postgresql: bool, ids: list[int]) -> set[int]:
    """Claim those of ``ids`` still unsent, for publishing: their ids leave ``outbox_unsent`` in
    ``session``'s transaction. Committed, that marks them sent; rolled back, they are unsent again.

    Waits for a relay holding some of them (``take_oldest``), then skips those it published.
    """
    if postgresql:
        statement = text("DELETE FROM outbox_unsent WHERE id = ANY(CAST(:ids AS bigint[])) RETURNING id")
        return set(session.scalars(statement, {"ids": ids}))
    return set(session.scalars(delete(OutboxUnsent).where(OutboxUnsent.id.in_(ids)).returning(OutboxUnsent.id)))


def take_oldest(session: Session, postgresql: bool, limit: int) -> list[StoredEvent]:
    """Claim the oldest ``limit`` unsent rows, as ``take_unsent`` does, skipping rows another
    publisher holds (``SKIP LOCKED``); the rows, read back, in id order."""
    if postgresql:
        taken = list(session.scalars(text(
            "DELETE FROM outbox_unsent WHERE id IN (SELECT id FROM outbox_unsent ORDER BY id LIMIT :limit "
            "FOR UPDATE SKIP LOCKED) RETURNING id"), {"limit": limit}))
    else:
        oldest = select(OutboxUnsent.id).order_by(OutboxUnsent.id).limit(limit).scalar_subquery()
        taken = list(session.scalars(delete(OutboxUnsent).where(OutboxUnsent.id.in_(oldest))
                                     .returning(OutboxUnsent.id)))
    if not taken:  # the relay's usual pass: nothing left unsent
        return []
    rows = session.execute(select(OutboxEvent.id, OutboxEvent.channel, OutboxEvent.event_json)
                           .where(OutboxEvent.id.in_(taken)).order_by(OutboxEvent.id))
    return [stored_event(*row) for row in rows]


def put_back(session: Session, ids: list[int]) -> None:
    """Mark rows taken by ``take_unsent`` or ``take_oldest`` unsent again (their publish failed)."""
    if ids:
        session.execute(insert(OutboxUnsent), [{"id": row_id} for row_id in ids])
