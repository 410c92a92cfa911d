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

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from shared import task_names as names
from shared.database import Database
from shared.event_bus import EventBus
from shared.exceptions import PublishError
from shared.models import OutboxEvent, utcnow
from shared.realtime import RealTimeEvent
from tasks.outbox_rows import StoredEvent, claim, mark_sent, store, stored_event
from tasks.registry import RakudaTask, task

log = logging.getLogger(__name__)

RELAY_BATCH = 1000


@dataclass
class Changes:
    """What a transaction body sees: the session, and ``emit()`` for events of this change."""

    session: Session
    events: list[RealTimeEvent] = field(default_factory=list)
    stored: list[StoredEvent] = field(default_factory=list)
    published: int = 0

    def emit(self, *events: RealTimeEvent) -> None:
        self.events += events

    def emit_all(self, events: Iterable[RealTimeEvent]) -> None:
        self.events += events

    def add_stored(self, rows: Iterable[StoredEvent]) -> None:
        """Outbox rows the body inserted itself (their JSON built by SQL): published after the commit too."""
        self.stored += rows


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
                stored = changes.stored + store(session, self.db.is_postgresql, changes.events)
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


@task(names.OUTBOX_RELAY)
def relay_outbox(task: RakudaTask, /) -> int:
    """Publish events left unsent (Redis was down at commit); raises while Redis is still down."""
    return task.runtime.outbox.relay()


@task(names.OUTBOX_PRUNE)
def prune_outbox(task: RakudaTask, /) -> int:
    """Delete outbox rows published more than a day ago."""
    return task.runtime.outbox.prune_sent()
