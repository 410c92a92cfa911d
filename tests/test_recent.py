"""The in-memory recent history: what a resume from memory replays is exactly what it missed."""

from __future__ import annotations

import gevent
import gevent.event
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.epoch_check import SharedEpochCheck
from gateway.recent import RecentHistory
from gateway.stream_ids import ZERO, predecessor

TYPES = ("A", "B", "C")


def make_stream(steps: list[tuple[int, str]]) -> list[tuple[tuple[int, int], str, str]]:
    """Events with increasing ids: each step adds ``gap`` ms (0: same ms, next sequence)."""
    out, ms, seq = [], 1_000, 0
    for gap, event_type in steps:
        ms, seq = (ms + gap, 0) if gap else (ms, seq + 1)
        out.append(((ms, seq), event_type, f'{{"n":{len(out)}}}'))
    return out


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 50), st.sampled_from(TYPES)), max_size=60),
    loaded=st.integers(0, 60),
    chunks=st.lists(st.integers(1, 8), max_size=20),
    max_events=st.integers(0, 30),
    max_age_ms=st.integers(0, 400),
    complete=st.booleans(),
    types=st.frozensets(st.sampled_from(TYPES), min_size=1),
)
def test_memory_replays_exactly_the_events_after_any_covered_cursor(
    steps, loaded, chunks, max_events, max_age_ms, complete, types
):
    stream = make_stream(steps)
    loaded = min(loaded, len(stream))
    recent = RecentHistory(max_events, max_age_ms)
    start_at = stream[loaded - 1][0] if loaded else ZERO
    # Loaded tail: the last max_events (or all) of what existed at start, newest first.
    tail = list(reversed(stream[:loaded]))[: max(max_events, 1)]
    recent.load(tail, start_at, complete=complete and len(tail) == loaded, now_ms=start_at[0])
    floors = [recent.floor]
    position = loaded
    for size in chunks:
        taken = stream[position:position + size]
        if not taken:
            break
        position += len(taken)
        recent.extend(taken, taken[-1][0], now_ms=taken[-1][0][0])
        floors.append(recent.floor)
    assert floors == sorted(floors), "the floor only grows"
    assert len(recent) <= max_events
    cursors = [ZERO] + [sid for sid, _t, _b in stream] + [predecessor(sid) for sid, _t, _b in stream]
    for after in cursors:
        if not recent.covers(after):
            with pytest.raises(ValueError):
                recent.since(after, recent.read_up_to, types)
            continue
        missed = [e for e in stream[:position] if after < e[0] <= recent.read_up_to and e[1] in types]
        assert recent.since(after, recent.read_up_to, types) == missed


def test_a_cursor_before_the_kept_span_is_not_covered():
    stream = make_stream([(1, "A")] * 10)
    recent = RecentHistory(max_events=3, max_age_ms=10_000)
    recent.load(reversed(stream), stream[-1][0], complete=True)
    assert not recent.covers(stream[5][0])
    assert recent.covers(stream[6][0])  # the newest dropped one: everything after it is kept
    assert [e[0] for e in recent.since(stream[6][0], stream[-1][0], frozenset("A"))] == [s[0] for s in stream[7:]]


def test_extend_rejects_entries_out_of_order():
    recent = RecentHistory(10, 10_000)
    recent.load([], (5, 0), complete=True)
    with pytest.raises(ValueError):
        recent.extend([((4, 0), "A", "{}")], (6, 0))


def test_shared_epoch_check_answers_a_crowd_with_few_reads():
    calls = []

    def read() -> str:
        calls.append(1)
        gevent.sleep(0.01)
        return "e1"

    check = SharedEpochCheck(read)
    crowd = [gevent.spawn(check.current) for _ in range(500)]
    gevent.joinall(crowd, timeout=10)
    assert [g.value for g in crowd] == ["e1"] * 500
    assert len(calls) <= 2


def test_shared_epoch_check_never_answers_with_a_read_that_started_before_the_call():
    epochs = iter(["old", "new"])
    started = gevent.event.Event()

    def read() -> str:
        value = next(epochs)
        started.set()
        gevent.sleep(0.02)
        return value

    check = SharedEpochCheck(read)
    first = gevent.spawn(check.current)
    started.wait(5)  # the first read is in flight: a later caller must get the next one
    late = gevent.spawn(check.current)
    gevent.joinall([first, late], timeout=5)
    assert (first.value, late.value) == ("old", "new")


def test_shared_epoch_check_hands_a_redis_error_to_its_callers():
    import redis

    def read() -> str:
        raise redis.ConnectionError("Connection refused")

    check = SharedEpochCheck(read)
    with pytest.raises(redis.ConnectionError):
        check.current()
