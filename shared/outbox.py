"""Events that follow the commit: written with the change, published after it, relayed if Redis was down.

A change and the events describing it are written in ONE transaction (``Outbox.transaction``),
so a rolled-back change never publishes. Right after the commit the new rows are published
(grouped by channel, one ``publish_many`` per channel) and marked sent. If Redis refuses
them, they stay unsent and ``relay()`` (a periodic task) publishes them later. On PostgreSQL
rows are claimed with ``FOR UPDATE SKIP LOCKED``, so the post-commit publisher and any number
of relays never publish the same row at once.

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
from typing import Any, cast

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session

from shared.constants import TYPE_CHANNELS
from shared.database import Database
from shared.event_bus import EventBus
from shared.exceptions import PublishError
from shared.models import OutboxEvent, utcnow
from shared.realtime import RealTimeEvent

log = logging.getLogger(__name__)

RELAY_BATCH = 1000


def record(session: Session, events: Iterable[RealTimeEvent]) -> list[OutboxEvent]:
    """Add ``events`` to the outbox in ``session``'s transaction (validated, not yet published)."""
    rows = []
    for event in events:
        event = RealTimeEvent.parse(event)
        rows.append(OutboxEvent(channel=TYPE_CHANNELS[event.type.value], event_json=event.to_json()))
    session.add_all(rows)
    return rows


def stamped(event_id: int, event_json: str) -> dict[str, Any]:
    """The stored event with ``data.outboxId`` set, so consumers can tell a republished duplicate.

    The stored JSON was validated when it was written; ``publish_many`` validates it again.
    """
    event = json.loads(event_json)
    payload = event["payload"]
    payload["data"] = {**(payload.get("data") or {}), "outboxId": event_id}
    return cast(dict[str, Any], event)


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
    table = OutboxEvent.__table__
    session.execute(update(table).where(table.c.id == bindparam("row_id"))
                    .values(published_at=now, bus_id=bindparam("row_bus_id")),
                    [{"row_id": i, "row_bus_id": b} for i, b in zip(ids, bus_ids, strict=True)])


@dataclass
class Changes:
    """What a transaction body sees: the session, and ``emit()`` for events of this change."""

    session: Session
    rows: list[OutboxEvent] = field(default_factory=list)
    published: int = 0

    def emit(self, *events: RealTimeEvent) -> None:
        self.rows += record(self.session, events)

    def emit_all(self, events: Iterable[RealTimeEvent]) -> None:
        self.rows += record(self.session, events)


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
                session.flush()
                ids = [row.id for row in changes.rows]
        finally:
            session.close()
        if ids:
            try:
                changes.published = self.publish_pending(ids, limit=len(ids))
            except PublishError as exc:
                log.warning("%d event(s) committed but not published (%s); left in the outbox for the relay",
                            len(ids), exc)

    def publish_pending(self, ids: list[int] | None = None, limit: int = RELAY_BATCH) -> int:
        """Publish unsent rows (these ``ids``, or the oldest ``limit``) and mark them sent.

        Raises PublishError when Redis refuses; channels published before that stay marked.
        """
        session = self.db.new_session()
        published = 0
        failure: PublishError | None = None
        try:
            with session.begin():
                query = (select(OutboxEvent.id, OutboxEvent.channel, OutboxEvent.event_json)
                         .where(OutboxEvent.published_at.is_(None))
                         .order_by(OutboxEvent.id).limit(limit).with_for_update(skip_locked=True))
                if ids is not None:
                    query = query.where(OutboxEvent.id.in_(ids))
                by_channel: dict[str, list[tuple[int, str]]] = defaultdict(list)
                for row_id, channel, event_json in session.execute(query):
                    by_channel[channel].append((row_id, event_json))
                now = utcnow()
                postgresql = self.db.is_postgresql
                for channel, group in by_channel.items():
                    try:
                        bus_ids = self.bus.publish_many(channel, [stamped(i, body) for i, body in group])
                    except PublishError as exc:
                        failure = exc
                        break
                    # none when realtime is off
                    marks: list[str | None] = [bus_ids[i] if i < len(bus_ids) else None for i in range(len(group))]
                    mark_sent(session, postgresql, [row_id for row_id, _ in group], marks, now)
                    published += len(group)
        finally:
            session.close()
        if failure is not None:
            raise failure
        return published

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
            result = session.execute(delete(OutboxEvent).where(OutboxEvent.published_at < cutoff))
            return result.rowcount or 0

    def unsent_count(self) -> int:
        with self.db.transaction() as session:
            return session.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
            ) or 0
