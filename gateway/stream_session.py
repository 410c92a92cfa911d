"""One client's stream, from registration to the end: the protocol the /events view runs.

    connect (register, join point) -> plan the resume (in turn with other resumes)
    -> ``connected`` (and ``reset``) -> tune the socket -> replay -> release what waited
    -> wait until the peer hangs up -> forget the stream

From the first ``yield`` on, gunicorn has written the headers and the first message; the hub
writes every later byte straight to the socket.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from gateway import messages
from gateway.admission import retry_for_client
from gateway.clients import StreamClient
from gateway.close_reasons import CloseReason
from gateway.frames import frame
from gateway.hub import Hub
from gateway.resume import ResumePlan

log = logging.getLogger(__name__)

UNKNOWN_RESUME = "the requested Last-Event-ID is unknown or older than the history"


@dataclass(frozen=True)
class StreamRequest:
    types: frozenset[str]  # event types the client follows
    channels: list[str]  # their channels' short names, as the client is told
    last_event_id: str | None
    sock: socket.socket
    chunked: bool  # HTTP/1.1: every write is one chunk
    remote: str


def kernel_give_up_ms(heartbeat_interval_ms: int, send_timeout_ms: int) -> int:
    """How long the kernel keeps unacknowledged data before it aborts the connection (TCP_USER_TIMEOUT).

    A peer that vanished without closing (sleep, NAT drop) leaves our heartbeat unacknowledged:
    the kernel gives up after one heartbeat interval, and the waiting recv ends the stream. A
    peer that stays but stops reading is the gateway's to drop, and count as slow, once its
    socket has taken nothing for the send timeout; the kernel's clock for it starts earlier (when
    the peer's window closed, before the gateway's writes began to wait), so it waits twice the
    send timeout, lest it abort the connection first and the drop be counted as a vanished peer.
    """
    return max(heartbeat_interval_ms, 2 * send_timeout_ms)


class StreamSession:
    def __init__(self, hub: Hub, wanted: StreamRequest) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.wanted = wanted

    def run(self) -> Iterator[bytes]:
        # Registered only once gunicorn runs this generator, so the ``finally`` always
        # unregisters it before gunicorn closes the socket (and its fd can be reused).
        wanted = self.wanted
        client, join = self.hub.connect(wanted.types, wanted.sock, chunked=wanted.chunked, remote=wanted.remote)
        resume_turn = contextlib.ExitStack()  # resumes take turns, in arrival order (gateway/admission.py)
        try:
            if wanted.last_event_id:
                resume_turn.enter_context(self.hub.resume_turns.turn())
            plan = self.hub.resume_planner.plan(wanted.last_event_id, join)
            from_memory = self._encode_memory_replay(plan, client.chunked)
            if from_memory is not None:
                # The turn covers the work (planning, encoding), not the wait for this client to
                # read: a slow reader must not hold up the resumes queued behind it.
                resume_turn.close()
            yield self._opening(client, plan)  # gunicorn writes the headers and this at once
            self._tune_socket()
            if from_memory is not None:
                client.write_now(from_memory)
            elif plan.after is not None:
                self._replay(client, plan)  # from Redis, page by page, still in its turn
            resume_turn.close()
            client.release()
            client.wait_closed()
        finally:
            resume_turn.close()
            client.close(CloseReason.STREAM_ENDED)

    def _opening(self, client: StreamClient, plan: ResumePlan) -> bytes:
        """``connected``, and ``reset`` when the resume cannot be honoured.

        ``connected`` carries a cursor too, so a client that loses this stream before its first
        event or heartbeat still resumes from here instead of reconnecting without an id (and
        missing what was published in between). Resuming, the cursor is the client's own.
        """
        s, epoch = self.settings, self.hub.epoch
        hello = {"connectionId": client.id, "channels": self.wanted.channels,
                 "heartbeatInterval": s.heartbeat_interval_ms, "debounceWindow": s.debounce_window_ms,
                 "debounceWindows": s.debounce_windows, "processId": self.hub.process_id, "resumed": plan.resumed}
        cursor = plan.after if plan.after is not None else plan.join.cursor()
        first = messages.json_message("connected", hello, retry=retry_for_client(s.retry_ms, s.retry_spread_ms),
                                      cursor=cursor, epoch=epoch)
        if plan.reset:
            first += messages.json_message(
                "reset", {"reason": plan.reason or UNKNOWN_RESUME, "lastEventId": self.wanted.last_event_id},
                cursor=plan.join.cursor(), epoch=epoch,
            )
        return first

    def _tune_socket(self) -> None:
        sock = self.wanted.sock
        # gunicorn sets TCP_NODELAY: one packet per write. A stream wants the kernel to
        # merge back-to-back messages (2.3x the messages/s at 1k clients, docs/benchmarks.md);
        # the first write after a pause still leaves at once.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                        kernel_give_up_ms(self.settings.heartbeat_interval_ms, self.settings.send_timeout_ms))

    def _encode_memory_replay(self, plan: ResumePlan, chunked: bool) -> bytes | None:
        """A replay the recent history holds, encoded in full: one write instead of one per message."""
        if plan.after is None or plan.entries is None:
            return None
        return b"".join(self.hub.resume_planner.replay(plan, chunked))

    def _replay(self, client: StreamClient, plan: ResumePlan) -> None:
        """What the client missed, written before anything that waited for it (the hub holds live messages)."""
        try:
            for message in self.hub.resume_planner.replay(plan, client.chunked):
                client.write_now(message)
        except redis.RedisError as exc:
            log.warning("replay for stream %s failed: %s", client.id, exc)
            client.write_now(frame(messages.json_message("reset", {"reason": "history unavailable"}), client.chunked))
