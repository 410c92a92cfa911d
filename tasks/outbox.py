"""Events that follow the commit: written with the change, published after it, relayed if Redis was down.

A change and the events describing it are written in ONE transaction (``Outbox.transaction``),
so a rolled-back change never publishes. The events of a transaction are stored in one
statement at its end, each already carrying its row id as ``data.outboxId`` (the ids are taken
from the table's sequence first), so the stored JSON is exactly what is published. Right after
the commit the new rows are published (grouped by channel, one ``publish_many`` per channel)
and marked sent. If Redis refuses them, they stay unsent and ``relay()`` (a periodic task)
publishes them later.

A row is unsent while its id is in ``outbox_unsent``. A publisher takes the rows it publishes
by deleting their ids there, publishes, and commits: the delete's row locks keep the
post-commit publisher and any number of relays from publishing the same row at once, and a
failed publish rolls the delete back (or puts back the rows of the channels not published).
Event rows are never updated, so marking 5,000 of them sent writes 5,000 narrow rows' deletes
instead of 5,000 new versions of rows that carry their JSON.

Delivery is at least once: a crash between publishing and the commit republishes. Each
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

from sqlalchemy import CursorResult, delete, select, text
from sqlalchemy.orm import Session

from shared import task_names as names
from shared.database import Database
from shared.event_bus import EventBus
from shared.exceptions import PublishError
from shared.models import OutboxEvent, OutboxUnsent, utcnow
from shared.realtime import RealTimeEvent
from tasks.outbox_rows import StoredEvent, put_back, store, take_oldest, take_unsent
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
            taken = take_unsent(session, self.db.is_postgresql, [row.id for row in stored])
            published, failure = self._publish(session, [row for row in stored if row.id in taken])
        if failure is not None:
            raise failure
        return published

    def publish_pending(self, limit: int = RELAY_BATCH) -> int:
        """Publish the oldest ``limit`` unsent rows and mark them sent.

        Raises PublishError when Redis refuses; channels published before that stay marked.
        """
        with self._publishing() as session:
            published, failure = self._publish(session, take_oldest(session, self.db.is_postgresql, limit))
        if failure is not None:
            raise failure
        return published

    @contextmanager
    def _publishing(self) -> Iterator[Session]:
        """A transaction that takes rows, publishes them and marks them sent.

        On PostgreSQL its commit does not wait for the disk: a crash that loses it only makes
        its rows unsent again, to be published once more, which at-least-once delivery allows.
        """
        session = self.db.new_session()
        try:
            with session.begin():
                if self.db.is_postgresql:
                    session.execute(text("SET LOCAL synchronous_commit TO off"))
                yield session
        finally:
            session.close()

    def _publish(self, session: Session, rows: list[StoredEvent]) -> tuple[int, PublishError | None]:
        """One ``publish_many`` per channel, for rows taken from the unsent ones in ``session``.

        Stops at the first PublishError and returns it, the rows not published put back as
        unsent: the channels published before it stay marked when the caller commits.
        """
        by_channel: dict[str, list[StoredEvent]] = defaultdict(list)
        for row in rows:
            by_channel[row.channel].append(row)
        published, published_channels = 0, set[str]()
        for channel, group in by_channel.items():
            try:
                self.bus.publish_many(channel, [row.event for row in group])
            except PublishError as exc:
                put_back(session, [row.id for row in rows if row.channel not in published_channels])
                return published, exc
            published_channels.add(channel)
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
        """Delete published rows written more than ``older_than`` ago."""
        cutoff = (now or utcnow()) - older_than
        with self.db.transaction() as session:
            stale = delete(OutboxEvent).where(OutboxEvent.created_at < cutoff,
                                              OutboxEvent.id.not_in(select(OutboxUnsent.id)))
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
