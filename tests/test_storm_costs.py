"""What keeps a crowd of resuming dashboards cheap: replays encoded once, writes that rest under load."""

from __future__ import annotations

import time

import gevent
import pytest

from gateway import fan_out as fan_out_module
from gateway import resume as resume_module
from gateway.hub import Hub
from gateway.resume import CACHED_RUN_MAX, JoinPoint, ResumePlan
from shared.config import Settings
from tests.conftest import default_settings
from tests.test_fan_out import RecordingClient

TYPES = ("INVENTORY_CHANGE", "PRICE_CHANGE")


def alternating_events(count: int) -> list[tuple[tuple[int, int], str, str]]:
    """Events whose types alternate, as at window 0: every run of a replay is one event long."""
    return [((1_000 + n, 0), TYPES[n % 2], f'{{"n":{n}}}') for n in range(count)]


def replay_bytes(hub: Hub, entries: list[tuple[tuple[int, int], str, str]], until: tuple[int, int]) -> bytes:
    join = JoinPoint(frozenset(TYPES), until)
    plan = ResumePlan(join, resumed=True, after=(999, 0), entries=entries)
    return b"".join(hub.resume_planner.replay(plan, chunked=True))


@pytest.fixture
def hub(redis_url: str) -> Hub:
    return Hub(default_settings(redis_url), commands=None)  # replay from memory and fan-out touch no Redis


def test_a_crowd_resuming_from_one_cursor_has_each_replayed_message_encoded_once(hub, monkeypatch):
    resume_module._cached_message.cache_clear()
    encoded: list[object] = []
    real = resume_module.messages.event_message
    monkeypatch.setattr(resume_module.messages, "event_message", lambda *a: encoded.append(a) or real(*a))
    entries = alternating_events(50)
    first = replay_bytes(hub, entries, until=(1_049, 0))
    for _ in range(199):
        assert replay_bytes(hub, entries, until=(1_049, 0)) == first
    assert len(encoded) == 50  # one per message, for 200 dashboards
    assert first.count(b"event: ") == 50
    assert hub.tallies.replayed_events == 200 * 50


def test_a_cached_replay_is_what_encoding_it_afresh_gives(hub):
    entries = alternating_events(30)
    resume_module._cached_message.cache_clear()
    fresh = replay_bytes(hub, entries, until=(1_029, 0))
    assert replay_bytes(hub, entries, until=(1_029, 0)) == fresh
    # A later join caps nothing here; an earlier one caps the last cursor: never a cached id past it.
    capped = replay_bytes(hub, entries[:10], until=(1_009, 0))
    assert capped == fresh[:len(capped)]


def test_long_runs_are_encoded_each_time_and_not_kept(hub):
    resume_module._cached_message.cache_clear()
    same_type = [((1_000 + n, 0), "PRICE_CHANGE", f'{{"n":{n}}}') for n in range(CACHED_RUN_MAX + 1)]
    replay_bytes(hub, same_type, until=(1_000 + CACHED_RUN_MAX, 0))
    assert resume_module._cached_message.cache_info().currsize == 0


def test_a_pass_over_the_streams_is_followed_by_a_rest_in_proportion(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(fan_out_module.gevent, "sleep", slept.append)
    fan_out_module.RestAfterWrites(0.5).after(0.08)
    fan_out_module.RestAfterWrites(0.25).after(0.03)
    fan_out_module.RestAfterWrites(1.0).after(0.5)  # share 1: never rests
    fan_out_module.RestAfterWrites(0.5).after(0.008)  # a pass over a thousand streams: no pause, no latency added
    assert slept == pytest.approx([0.08, 0.09])


class SlowClient(RecordingClient):
    """A stream whose every write takes the process 30 ms (as thousands of writes would)."""

    def send(self, data: bytes) -> bool:
        time.sleep(0.03)  # blocks the whole process, as CPU work does
        return super().send(data)


def writes_while_events_keep_coming(redis_url: str, share: float) -> tuple[int, int]:
    """(writes, messages) to one slow stream while 4 events/10 ms arrive for 0.8 s at window 0."""
    settings: Settings = default_settings(redis_url).model_copy(
        update={"debounce_window_ms": 0, "debounce_window_overrides": (), "fan_out_share": share})
    hub = Hub(settings, commands=None)
    client = SlowClient(set(TYPES))
    hub.registry.add(client)
    flusher = gevent.spawn(hub.fan_out.flush_forever)
    start, added = time.monotonic(), 0
    while time.monotonic() - start < 0.8:
        due = int((time.monotonic() - start) * 400)  # catch up after a blocking pass, as a reader would
        for _ in range(due - added):
            hub.debouncer.add((2_000 + added, 0), TYPES[added % 2], f'{{"n":{added}}}', 0)
            added += 1
        hub.fan_out._wake.set()
        gevent.sleep(0.002)
    gevent.sleep(0.3)  # the last pass and its rest
    flusher.kill()
    assert client.messages_sent == added  # nothing is dropped by resting
    return len(client.writes), added


def test_under_load_events_that_come_during_a_rest_leave_in_the_next_write(redis_url):
    eager_writes, eager_events = writes_while_events_keep_coming(redis_url, share=1.0)
    resting_writes, resting_events = writes_while_events_keep_coming(redis_url, share=0.25)
    # Resting 3 passes' worth after each pass: about a quarter of the writes for as many events.
    assert resting_writes / resting_events < 0.6 * eager_writes / eager_events
