"""Outbox rows: stored with the change's transaction, claimed for publishing, marked sent.

On PostgreSQL each is one statement (ids taken from the table's sequence first, so that the
stored JSON already carries ``data.outboxId``; the rows written with one COPY; claims and marks
over id arrays); elsewhere, row by row.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from shared.constants import CHANNEL_TYPES, TYPE_CHANNELS
from shared.models import OutboxEvent, utcnow
from shared.realtime import EncodedEvent, RealTimeEvent


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
        event_json = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return StoredEvent(row_id, channel, EncodedEvent(CHANNEL_TYPES[channel], event_json))


def mark_sent(session: Session, postgresql: bool, ids: list[int], bus_ids: list[str | None],
              now: datetime) -> None:
    """Mark these rows published with their bus ids: one statement on PostgreSQL (id and bus id arrays)."""
    if not ids:
        return
    if postgresql:
        session.execute(text(
            "UPDATE outbox_events AS o SET published_at = :now, bus_id = s.bus_id "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:bus_ids AS varchar[])) AS s(id, bus_id) "
            "WHERE o.id = s.id AND o.id = ANY(CAST(:ids AS bigint[]))"  # found by primary key, not the table hashed
        ), {"now": now, "ids": ids, "bus_ids": bus_ids})
        return
    table = cast(Table, OutboxEvent.__table__)
    session.execute(update(table).where(table.c.id == bindparam("row_id"))
                    .values(published_at=now, bus_id=bindparam("row_bus_id")),
                    [{"row_id": i, "row_bus_id": b} for i, b in zip(ids, bus_ids, strict=True)])


def claim(session: Session, postgresql: bool, ids: list[int]) -> set[int]:
    """Those of ``ids`` still unsent and not being published by anyone else (locked until commit)."""
    if postgresql:
        return set(session.scalars(text(
            "SELECT id FROM outbox_events WHERE id = ANY(CAST(:ids AS bigint[])) AND published_at IS NULL "
            "FOR UPDATE SKIP LOCKED"), {"ids": ids}))
    return set(session.scalars(select(OutboxEvent.id).where(OutboxEvent.id.in_(ids),
                                                           OutboxEvent.published_at.is_(None))))
