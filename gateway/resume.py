"""Resuming a stream: where a client joined, whether its Last-Event-ID can be resumed, and the replay.

A client joins the live stream at a ``JoinPoint``: everything up to ``until`` has left the
debouncer, except the events still held back in a window (``held_back``: per type, the first
held id), which reach the client live. A resume replays (cursor, until] minus the held-back
events, so nothing is lost and nothing is sent twice by this process.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis

from gateway import failover, history, messages, stream_ids
from gateway.debounce import Debouncer, cursor_with, not_held
from gateway.epoch_check import SharedEpochCheck
from gateway.frames import frame
from gateway.older_history import OlderHistory
from gateway.reader import HistoryReader
from gateway.recent import Entry, RecentHistory
from gateway.stream_ids import StreamId
from gateway.tallies import StreamTallies
from shared.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JoinPoint:
    """Where the live stream stood for a client at the moment it was registered."""

    types: frozenset[str]
    until: StreamId  # read (and let go, but for ``held_back``) up to here
    held_back: dict[str, StreamId] = field(default_factory=dict)  # type -> first id still in a window

    def cursor(self) -> StreamId:
        """Everything of the client's types up to this id has left: the cursor of a fresh start."""
        return cursor_with(self.held_back, self.until, self.types)


@dataclass(frozen=True)
class ResumePlan:
    join: JoinPoint
    resumed: bool = False  # the client asked to resume and can be
    reset: bool = False  # it asked, but its id is unknown, too old or too far behind
    after: StreamId | None = None  # the cursor to replay from
    entries: list[Entry] | None = None  # what to replay, when memory had it (else read from Redis)
    reason: str = ""  # why a reset, when it is not the usual one


class ResumePlanner:
    def __init__(self, settings: Settings, reader: HistoryReader, debouncer: Debouncer, recent: RecentHistory,
                 older: OlderHistory, tallies: StreamTallies) -> None:
        self.settings = settings
        self.reader = reader
        self.debouncer = debouncer
        self.recent = recent
        self.older = older
        self.epoch_check = SharedEpochCheck(older.read_epoch)
        self.tallies = tallies

    def join_point(self, types: frozenset[str]) -> JoinPoint:
        """Taken in the same step as the registration: nothing may leave in between."""
        held_back = {t: sid for t, sid in self.debouncer.held_back().items() if t in types}
        return JoinPoint(types, self.debouncer.read_up_to, held_back)

    def plan(self, last_event_id: str | None, join: JoinPoint) -> ResumePlan:
        """Can a client that joined at ``join`` resume from ``last_event_id``, and with what?

        A cursor of the current epoch inside the recent history is answered from memory (the
        entries are taken now, before anything can trim them); an older one is checked in
        Redis, queued behind the other Redis resumes.
        """
        if not last_event_id:
            return ResumePlan(join)
        try:
            epoch, after = stream_ids.parse_cursor(last_event_id)
            entries, behind = self._find(epoch, after, join)
        except ValueError:
            entries, behind = None, None
        except redis.RedisError as exc:
            log.warning("cannot check resume point (Redis: %s): sending reset", exc)
            entries, behind = None, None
        if behind is None:
            self.tallies.resets += 1
            return ResumePlan(join, reset=True)
        limit = self.settings.replay_max_events
        if self._too_far(entries, behind, after, limit):
            self.tallies.resets += 1
            return ResumePlan(join, reset=True, reason=f"more than {limit} events behind (REALTIME_REPLAY_MAX_EVENTS)")
        self.tallies.resumes += 1
        if entries is not None:
            self.tallies.resumes_from_memory += 1
        return ResumePlan(join, resumed=True, after=after, entries=entries)

    def _find(self, epoch: str, after: StreamId, join: JoinPoint) -> tuple[list[Entry] | None, int | None]:
        """(entries from memory or None, the history's length); length None when not resumable."""
        if self._memory_serves(epoch, after):
            entries = self.recent.since(after, join.until, join.types)
            return entries, len(entries)
        info = history.read_info(self.reader.redis)
        # a failover that lost events this process read: not before its reader noticed
        if not self.older.resumable(epoch, after) or failover.lost_entries(self.reader.redis,
                                                                           self.debouncer.read_up_to, info):
            return None, None
        return None, info.length

    def _too_far(self, entries: list[Entry] | None, length: int, after: StreamId, limit: int) -> bool:
        """More than ``limit`` events to replay? Counting reads at most limit+1 entries, after the cursor only."""
        if entries is not None:
            return len(entries) > limit  # from memory: counted without Redis
        try:
            return length > limit and history.more_than_after(self.reader.redis, after, limit)
        except redis.RedisError as exc:
            log.warning("cannot count the events to replay (Redis: %s): sending reset", exc)
            return True

    def _memory_serves(self, epoch: str, after: StreamId) -> bool:
        """Cursor in the recent history, of the epoch Redis has now (one read shared by a crowd)."""
        if epoch != self.reader.epoch or not self.recent.covers(after):
            return False
        current = self.epoch_check.current()  # waits: it may not trust a read that predates it
        return current == self.reader.epoch and self.recent.covers(after)  # the span may have moved meanwhile

    def replay(self, plan: ResumePlan, chunked: bool) -> Iterator[bytes]:
        """The messages a resuming client missed, in stream order, each with its cursor id, framed."""
        assert plan.after is not None
        join = plan.join
        # A replayed message's id may not pass an event that is still held back for this client.
        cap = join.cursor()
        entries = plan.entries
        if entries is None:
            entries = self.older.entries(plan.after, join.until, join.types)
        epoch = self.reader.epoch
        run_type, run_last = "", plan.after
        run: list[str] = []
        for sid, event_type, body in not_held(entries, join.held_back):  # the held-back ones come live
            if run and (event_type != run_type or len(run) >= self.settings.batch_max_events):
                self.tallies.replayed_events += len(run)
                yield replay_message(run_type, tuple(run), min(run_last, cap), epoch, chunked)
                run = []
            run_type, run_last = event_type, sid
            run.append(body)
        if run:
            self.tallies.replayed_events += len(run)
            yield replay_message(run_type, tuple(run), min(run_last, cap), epoch, chunked)


def replay_message(event_type: str, bodies: tuple[str, ...], cursor: StreamId, epoch: str, chunked: bool) -> bytes:
    """One replayed message, framed: short ones come from the cache of recent replays."""
    if len(bodies) <= CACHED_RUN_MAX:
        return _cached_message(event_type, bodies, cursor, epoch, chunked)
    return _encode_message(event_type, bodies, cursor, epoch, chunked)


def _encode_message(event_type: str, bodies: tuple[str, ...], cursor: StreamId, epoch: str, chunked: bool) -> bytes:
    return frame(messages.event_message(event_type, messages.batch_data(event_type, bodies, len(bodies)),
                                        cursor, epoch), chunked)


# After a deploy thousands of dashboards resume from nearly the same cursor, so their replays are
# mostly the same messages. Where events of different types alternate (window 0, or short
# windows), a replay is hundreds of one-event messages; encoding each again for every dashboard
# would be most of a new process's work in such a storm, so each is encoded once. Only short
# messages are kept (a long one costs little per event to encode), which bounds the cache to
# about ten megabytes. The bodies are the recent history's own strings, whose hashes Python
# keeps, so a lookup costs little.
CACHED_RUN_MAX = 4
_cached_message = functools.lru_cache(maxsize=8192)(_encode_message)
