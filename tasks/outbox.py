"""Events that follow the commit: written with the change, published after it, relayed if Redis was down.

A change and the events describing it are written in ONE transaction (``Outbox.transaction``),
so a rolled-back change never publishes. The events of a transaction are stored in one
statement at its end, each already carrying its row id as ``data.outboxId`` (the ids are taken
from the table's sequence first), so the stored JSON is exactly what is published. Right after
the commit the new rows are published (grouped by channel, one ``publish_many`` per channel)
and marked sent by id array. If Redis refuses them, they stay unsent and ``relay()`` (a
periodic task) publishes them later. On PostgreSQL rows are claimed with ``FOR UPDATE SKIP
LOCKED``, so the post-commit publisher and any number of relays never publish the same row at once.

Delivery is at least once: a crash between publishing and marking sent republishes. Each
event carries ``data.outboxId`` so a consumer can drop a duplicate.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, insert, select, text, update
from sqlalchemy.orm import Session

from shared.constants import CHANNEL_TYPES, TYPE_CHANNELS
from shared.database import Database
from shared.event_bus import EventBus
from shared.exceptions import PublishError
from shared.models import OutboxEvent, utcnow
from shared.realtime import EncodedEvent, RealTimeEvent

log = logging.getLogger(__name__)

RELAY_BATCH = 1000


class StoredEvent(NamedTuple):
    """An outbox row as the publisher needs it: its id, its channel and the event to publish."""

    id: int
    channel: str
    event: EncodedEvent


def store(session: Session, postgresql: bool, events: list[RealTimeEvent]) -> list[StoredEvent]:
    """Insert ``events`` (validated where they were made) as outbox rows in ``session``'s transaction.

    On PostgreSQL: one statement for the ids (the sequence's next values), one for the rows.
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
    session.execute(text(
        "INSERT INTO outbox_events (id, channel, event_json, created_at) SELECT u.id, u.channel, u.body, :now "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:channels AS varchar[]), CAST(:bodies AS text[])) "
        "AS u(id, channel, body)"
    ), {"now": now, "ids": ids, "channels": [s.channel for s in stored], "bodies": [s.event.json for s in stored]})
    return stored


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
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:bus_ids AS varchar[])) AS s(id, bus_id) WHERE o.id = s.id"
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


@dataclass
class Changes:
    """What a transaction body sees: the session, and ``emit()`` for events of this change."""

    session: Session
    events: list[RealTimeEvent] = field(default_factory=list)
    published: int = 0

    def emit(self, *events: RealTimeEvent) -> None:
        self.events += events

    def emit_all(self, events: Iterable[RealTimeEvent]) -> None:
        self.events += events


class Outbox:
    def __init__(self, database: Database, bus: EventBus) -> None:
        self.db = database
        self.bus = bus

    @contextmanager
    def transaction(self) -> Iterator[Changes]:
        """Commit the body's changes and events together, then publish the events.

        A body that raises commits nothing and publishes nothing. If Redis is down after the
        commit, the events stay in the outbox for ``relay()``; the change is not undone.
        """
        session = self.db.new_session()
        changes = Changes(session)
        try:
            with session.begin():
                yield changes
                stored = store(session, self.db.is_postgresql, changes.events)
        finally:
            session.close()
        if stored:
            try:
                changes.published = self.publish_stored(stored)
            except PublishError as exc:
                log.warning("%d event(s) committed but not published (%s); left in the outbox for the relay",
                            len(stored), exc)

    def publish_stored(self, stored: list[StoredEvent]) -> int:
        """Publish these just-committed rows (those no relay has taken meanwhile) and mark them sent."""
        with self._publishing() as session:
            claimed = claim(session, self.db.is_postgresql, [row.id for row in stored])
            published, failure = self._publish(session, [row for row in stored if row.id in claimed])
        if failure is not None:
            raise failure
        return published

    def publish_pending(self, limit: int = RELAY_BATCH) -> int:
        """Publish the oldest ``limit`` unsent rows and mark them sent.

        Raises PublishError when Redis refuses; channels published before that stay marked.
        """
        with self._publishing() as session:
            rows = session.execute(select(OutboxEvent.id, OutboxEvent.channel, OutboxEvent.event_json)
                                   .where(OutboxEvent.published_at.is_(None))
                                   .order_by(OutboxEvent.id).limit(limit).with_for_update(skip_locked=True))
            published, failure = self._publish(session, [stored_event(*row) for row in rows])
        if failure is not None:
            raise failure
        return published

    @contextmanager
    def _publishing(self) -> Iterator[Session]:
        session = self.db.new_session()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def _publish(self, session: Session, rows: list[StoredEvent]) -> tuple[int, PublishError | None]:
        """One ``publish_many`` per channel, each channel's rows marked sent in one statement.

        Stops at the first PublishError and returns it: the channels published before it stay
        marked when the caller commits.
        """
        by_channel: dict[str, list[StoredEvent]] = defaultdict(list)
        for row in rows:
            by_channel[row.channel].append(row)
        now, published = utcnow(), 0
        for channel, group in by_channel.items():
            try:
                bus_ids = self.bus.publish_many(channel, [row.event for row in group])
            except PublishError as exc:
                return published, exc
            # none when realtime is off
            marks: list[str | None] = [bus_ids[i] if i < len(bus_ids) else None for i in range(len(group))]
            mark_sent(session, self.db.is_postgresql, [row.id for row in group], marks, now)
            published += len(group)
        return published, None

    def relay(self, batch: int = RELAY_BATCH) -> int:
        """Publish every unsent row, oldest first; returns how many were published."""
        total = 0
        while True:
            count = self.publish_pending(limit=batch)
            total += count
            if count < batch:
                return total

    def prune_sent(self, older_than: timedelta = timedelta(days=1), now: datetime | None = None) -> int:
        """Delete rows published more than ``older_than`` ago."""
        cutoff = (now or utcnow()) - older_than
        with self.db.transaction() as session:
            stale = delete(OutboxEvent).where(OutboxEvent.published_at < cutoff)
            result = cast(CursorResult[Any], session.execute(stale))
            return result.rowcount or 0
