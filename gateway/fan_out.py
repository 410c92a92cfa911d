"""Writing to every stream: the batches the debouncer lets go, and the heartbeats.

Clients are grouped by frame key (their set of types, chunked or not): each message is
encoded once per set of types and framed once per key (``gateway.frames.FrameCache``), and
each client of a group gets the same bytes in ONE write, whatever number of batches was due.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
import gevent.event

from gateway import messages
from gateway.debounce import Batch, Debouncer
from gateway.frames import FrameCache
from gateway.reader import now_ms
from gateway.registry import StreamRegistry
from gateway.tallies import StreamTallies
from shared.config import Settings
from shared.timestamps import utc_iso


class RestAfterWrites:
    """Keep long passes over the streams to a share of the process's time: each is followed by a pause.

    When a pass over every stream takes longer than the gap between events (thousands of streams
    at tens of events a second), a process without it writes back to back: one system call per
    stream per pass, each carrying the event or two that came during the pass before, while new
    streams and resumes wait for the gaps. After a pass of T (at least ``LONG_PASS_S``), the next
    waits T * (1 / share - 1): the events of the pause go out together in the next pass (one
    write per stream for all of them), and the pause is the requests' time. A shorter pass
    (a thousand streams take a few milliseconds) is not followed by a pause: there every event
    leaves as soon as it is read, as without this.
    """

    LONG_PASS_S = 0.02  # shorter passes keep up with events by themselves; resting would only add latency

    def __init__(self, share: float) -> None:
        self.factor = 1 / share - 1

    def after(self, spent_s: float) -> None:
        if spent_s >= self.LONG_PASS_S and self.factor > 0:
            gevent.sleep(spent_s * self.factor)


class FanOut:
    def __init__(self, settings: Settings, registry: StreamRegistry, debouncer: Debouncer, tallies: StreamTallies,
                 epoch: Callable[[], str], wake: gevent.event.Event) -> None:
        self.settings = settings
        self.registry = registry
        self.debouncer = debouncer
        self.tallies = tallies
        self.epoch = epoch  # of the history being read: in every message id
        self._wake = wake  # set by the reader when windows may have changed

    def flush_forever(self) -> None:
        rest = RestAfterWrites(self.settings.fan_out_share)
        while True:
            deadline = self.debouncer.next_deadline()
            if deadline is None:
                self._wake.wait()
            else:
                delay = (deadline - now_ms()) / 1000
                if delay > 0:
                    self._wake.wait(delay)
            self._wake.clear()
            started = time.monotonic()
            self.send_batches(self.debouncer.flush_due(now_ms()))
            rest.after(time.monotonic() - started)

    def send_batches(self, batches: list[Batch]) -> None:
        """Write the due batches: each encoded once per set of types, ONE write per client."""
        if not batches or not self.registry.groups:
            return
        epoch = self.epoch()
        data = [messages.batch_data(b.type, [body for _sid, body in b.events], b.count) for b in batches]

        def encode(types: frozenset[str]) -> bytes:
            return b"".join(messages.event_message(b.type, data[i], b.cursor_for(types), epoch)
                            for i, b in enumerate(batches) if b.type in types)

        frames = FrameCache(encode)
        sent = [0] * len(batches)
        dropped = [0] * len(batches)
        now = time.time()
        for key, group in list(self.registry.groups.items()):
            mine = [i for i, b in enumerate(batches) if b.type in key[0]]
            if not mine:
                continue
            frame, carried, delivered, slow = frames.for_key(key), len(mine), 0, 0
            for client in list(group):
                if client.send(frame):
                    client.messages_sent += carried
                    client.last_event_at = now
                    delivered += 1
                elif client.close_reason is not None and client.close_reason.slow:
                    slow += 1
            for i in mine:
                sent[i] += delivered
                dropped[i] += slow
        written_ms = time.time() * 1000
        for batch, clients, slow_clients in zip(batches, sent, dropped, strict=True):
            self.tallies.types[batch.type]["dropped"] += batch.count * slow_clients
            self.tallies.count_batch(batch, clients, written_ms)

    def heartbeat_forever(self) -> None:
        interval = self.settings.heartbeat_interval_ms / 1000
        next_beat = time.monotonic() + interval
        while True:
            gevent.sleep(max(0.0, next_beat - time.monotonic()))
            next_beat += interval
            if next_beat < time.monotonic():  # fell behind (a stall): do not burst to catch up
                next_beat = time.monotonic() + interval
            self.send_heartbeats()

    def send_heartbeats(self) -> None:
        """A heartbeat to every stream, with the cursor of its types (everything up to it has left)."""
        body = {"time": utc_iso(precision="seconds")}
        epoch = self.epoch()
        frames = FrameCache(
            lambda types: messages.json_message("heartbeat", body, cursor=self.debouncer.cursor(types), epoch=epoch)
        )
        for key, group in list(self.registry.groups.items()):
            frame = frames.for_key(key)
            for client in list(group):
                client.send(frame)
