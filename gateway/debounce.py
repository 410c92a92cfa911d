"""Per-type debounce windows and the resume cursor, as a plain class driven by explicit times.

Events of one type that arrive within ``window_ms`` of the first one share a message; the
window is fixed by that first event and never extended by later ones, so under a steady
stream every event still leaves within one window.

The cursor is what makes resume lossless. The ``id:`` a client holds must mean "every event
of my channels up to here has been sent to me". When a message of type A goes out while a
window of type B is still open, B's pending events are older than A's, so A's message may
only carry the id just *before* B's first pending event. Resuming from it replays B's
events (and maybe A's again: at least once, never zero times; each event's own id lets the
client drop the duplicates).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from gateway.stream_ids import ZERO, StreamId, predecessor


@dataclass
class Batch:
    """The events of one type that leave together as one SSE message."""

    type: str
    first_id: StreamId
    deadline_ms: float
    events: list[tuple[StreamId, str]] = field(default_factory=list)  # at most max_events
    count: int = 0
    # Filled when the batch leaves: per type, the first id still held back in a window, and
    # the stream position read so far. Together they give the cursor for any set of types.
    held_back: dict[str, StreamId] = field(default_factory=dict)
    read_up_to: StreamId = ZERO

    @property
    def truncated(self) -> bool:
        return self.count > len(self.events)

    def cursor_for(self, types: Iterable[str]) -> StreamId:
        return cursor_with(self.held_back, self.read_up_to, types)


Entry = tuple[StreamId, str, str]


def not_held(entries: Iterable[Entry], held_back: dict[str, StreamId]) -> Iterator[Entry]:
    """The (id, type, body) entries that have left: not at or after their type's first held-back id."""
    for entry in entries:
        sid, event_type, _body = entry
        if event_type not in held_back or sid < held_back[event_type]:
            yield entry


def cursor_with(held_back: dict[str, StreamId], read_up_to: StreamId, types: Iterable[str]) -> StreamId:
    """The greatest id up to which every event of ``types`` has left, given what is held back."""
    held = [held_back[t] for t in types if t in held_back]
    if not held:
        return read_up_to
    return min(predecessor(min(held)), read_up_to)


class Debouncer:
    """Collects events (in stream order) into per-type windows; hands out the due ones.

    ``windows`` gives a type its own window length (0: each event leaves alone, at once);
    the other types use ``window_ms``. The cursor rule above holds for any mix of lengths:
    it only looks at which first ids are still held, never at how long they will be.
    """

    def __init__(self, window_ms: float, max_events: int, windows: Mapping[str, float] | None = None) -> None:
        for name, value in [("window_ms", window_ms), *((f"window of {t}", w) for t, w in (windows or {}).items())]:
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, got {max_events}")
        self.window_ms = window_ms
        self.windows = dict(windows or {})
        self.max_events = max_events
        self.read_up_to: StreamId = ZERO
        self._open: dict[str, Batch] = {}
        self._closed: list[Batch] = []  # full-window batches (window 0: one per event)

    def start_at(self, sid: StreamId) -> None:
        """The stream position already behind us when we start reading."""
        self.read_up_to = sid

    def skip(self, sid: StreamId) -> None:
        """An entry read from the stream that is not an event: move past it."""
        if sid > self.read_up_to:
            self.read_up_to = sid

    def add(self, sid: StreamId, event_type: str, event_json: str, now_ms: float) -> None:
        """One event read from the stream; ids must arrive in increasing order."""
        if sid <= self.read_up_to:
            raise ValueError(f"stream id {sid} is not after {self.read_up_to}")
        self.read_up_to = sid
        batch = self._open.get(event_type)
        if batch is None:
            window = self.window_for(event_type)
            batch = Batch(event_type, sid, now_ms + window)
            if window == 0:
                self._closed.append(batch)
            else:
                self._open[event_type] = batch
        batch.count += 1
        if len(batch.events) < self.max_events:
            batch.events.append((sid, event_json))

    def window_for(self, event_type: str) -> float:
        return self.windows.get(event_type, self.window_ms)

    def next_deadline(self) -> float | None:
        deadlines = [b.deadline_ms for b in self._closed[:1]] + [b.deadline_ms for b in self._open.values()]
        return min(deadlines) if deadlines else None

    def flush_due(self, now_ms: float) -> list[Batch]:
        """The batches whose window has ended, oldest first, each with its cursor inputs."""
        due = self._closed
        self._closed = []
        for event_type, batch in list(self._open.items()):
            if batch.deadline_ms <= now_ms:
                due.append(self._open.pop(event_type))
        due.sort(key=lambda b: b.first_id)
        # Newest first: what each batch leaves held back is the open windows and, per type, the
        # earliest of the due batches after it (one pass, however many batches are due).
        open_firsts = {t: b.first_id for t, b in self._open.items()}
        later_firsts: dict[str, StreamId] = {}
        for batch in reversed(due):
            held_back = dict(open_firsts)
            for event_type, first in later_firsts.items():
                if event_type not in held_back or first < held_back[event_type]:
                    held_back[event_type] = first
            batch.held_back = held_back
            batch.read_up_to = self.read_up_to
            if batch.type not in later_firsts or batch.first_id < later_firsts[batch.type]:
                later_firsts[batch.type] = batch.first_id
        return due

    def held_back(self) -> dict[str, StreamId]:
        """Per type, the first event still held back: it and the later ones of its type have not left.

        Everything else up to ``read_up_to`` has. A resume replays exactly that; the held
        events reach the resumed client live.
        """
        held_back = {t: b.first_id for t, b in self._open.items()}
        for batch in self._closed:
            held_back[batch.type] = min(held_back.get(batch.type, batch.first_id), batch.first_id)
        return held_back

    def cursor(self, types: Iterable[str]) -> StreamId:
        """Everything of ``types`` up to this id has left (the id a heartbeat carries)."""
        return cursor_with(self.held_back(), self.read_up_to, types)
