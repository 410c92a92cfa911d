"""Resumes from cursors older than a worker's memory: Redis reads that queue, never fail on load.

A reconnect storm sends thousands of these at once. They go over a dedicated Redis client of
``size`` connections with a gevent semaphore of the same size in front: a request waits its
turn (first come, first served) instead of timing out on a full connection pool, so any
``redis.RedisError`` raised here comes from Redis itself (unreachable, timed out, refused),
never from this process being busy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from gateway import history
from gateway.admission import ResumeTurns
from gateway.recent import Entry
from gateway.stream_ids import StreamId
from shared.config import Settings
from shared.event_bus import ensure_epoch
from shared.redis_client import redis_for


class OlderHistory:
    """Resume checks and replays that go to Redis, at most ``size`` at a time, the rest queued."""

    def __init__(self, settings: Settings, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.client = redis_for(settings, max_connections=size, client_name="rakuda-gateway-history")
        self._turns = ResumeTurns(size)  # one turn per connection, the rest queued in order

    @property
    def waiting(self) -> int:
        """Requests queued for a connection now (shown in the process snapshot)."""
        return self._turns.waiting

    @contextmanager
    def _slot(self) -> Iterator[redis.Redis]:
        with self._turns.turn():
            yield self.client

    def read_epoch(self) -> str:
        """The history's epoch now (created if Redis has none)."""
        with self._slot() as client:
            return ensure_epoch(client)

    def resumable(self, epoch: str, after: StreamId) -> bool:
        """Is every event after ``after`` of history ``epoch`` still in Redis? Raises RedisError."""
        with self._slot() as client:
            return epoch == ensure_epoch(client) and history.can_resume_from(history.read_info(client), after)

    def entries(self, after: StreamId, until: StreamId, types: frozenset[str]) -> list[Entry]:
        """The events of ``types`` in ``(after, until]``, read in full before the slot is given back."""
        with self._slot() as client:
            return list(history.replay_entries(client, after, until, types))

    def close(self) -> None:
        self.client.connection_pool.disconnect()
