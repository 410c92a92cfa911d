"""One open stream: writes pre-encoded bytes straight to its socket, without blocking the hub.

The hub calls :meth:`StreamClient.send` for every client in one loop. A send that the
kernel takes at once costs one ``os.write``; what the kernel does not take waits in a
bounded buffer drained by a greenlet of this client's own. A client whose buffer overflows,
or whose socket accepts nothing for ``send_timeout`` seconds, is disconnected (it resumes
with Last-Event-ID) so that it never delays the others.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

import gevent
from gevent.socket import wait_write

from gateway.close_reasons import CloseReason
from gateway.frames import FrameKey
from shared.timestamps import utc_iso

log = logging.getLogger(__name__)


class StreamClient:
    def __init__(
        self,
        conn_id: str,
        types: frozenset[str],
        sock: socket.socket,
        *,
        chunked: bool,
        buffer_limit: int,
        send_timeout_s: float,
        on_close: Callable[[StreamClient, CloseReason], None],
        remote: str = "",
    ) -> None:
        self.id = conn_id
        self.types = types
        self.sock = sock
        self.fd = sock.fileno()
        self.chunked = chunked
        self.frame_key: FrameKey = (types, chunked)  # what the hub writes to it depends on these only
        self.remote = remote
        self.buffer_limit = buffer_limit
        self.send_timeout_s = send_timeout_s
        self._on_close = on_close
        self.connected_at = time.time()
        self.last_event_at: float | None = None
        self.bytes_sent = 0
        self.messages_sent = 0
        self.closed = False
        self.close_reason: CloseReason | None = None
        self._pending = bytearray()
        self._during_replay: bytearray | None = bytearray()  # live messages that wait for the replay to end
        self._drainer: gevent.Greenlet | None = None

    # --- writing ---
    def send(self, data: bytes) -> bool:
        """Queue ``data`` for this client; False if the client is (now) gone."""
        if self.closed:
            return False
        if self._during_replay is not None:
            if len(self._during_replay) + len(data) > self.buffer_limit:
                self.close(CloseReason.BUFFER_FULL_IN_REPLAY)
                return False
            self._during_replay += data
            return True
        if self._pending:
            if len(self._pending) + len(data) > self.buffer_limit:
                self.close(CloseReason.BUFFER_FULL)
                return False
            self._pending += data
            return True
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self.close(CloseReason.GONE, exc.__class__.__name__)
            return False
        self.bytes_sent += written
        if written < len(data):
            self._pending += data[written:]
            self._drainer = gevent.spawn(self._drain)
        return True

    def write_now(self, data: bytes) -> None:
        """Write ``data`` before anything held back (the replay); blocks this greenlet only."""
        view = memoryview(data)
        while view and not self.closed:
            written = self._write_some(view)
            if written is None:
                return
            view = view[written:]
            if view and not self._wait_writable():
                return

    def release(self) -> None:
        """Replay is over: send what arrived meanwhile, then write live."""
        waiting, self._during_replay = self._during_replay, None
        if waiting:
            self.send(bytes(waiting))

    def _write_some(self, data: bytes | bytearray | memoryview) -> int | None:
        """Off the fan-out path: as much of ``data`` as the kernel takes now; None once the socket failed."""
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.close(CloseReason.GONE, exc.__class__.__name__)
            return None
        self.bytes_sent += written
        return written

    def _wait_writable(self) -> bool:
        try:
            wait_write(self.fd, timeout=self.send_timeout_s, timeout_exc=TimeoutError())
        except TimeoutError:
            self.close(CloseReason.SEND_TIMEOUT, f"no write for {self.send_timeout_s:g}s")
            return False
        except OSError as exc:
            self.close(CloseReason.GONE, exc.__class__.__name__)
            return False
        return True

    def _drain(self) -> None:
        while self._pending and not self.closed:
            if not self._wait_writable():
                return
            written = self._write_some(self._pending)
            if written is None:
                return
            del self._pending[:written]

    @property
    def buffered(self) -> int:
        return len(self._pending) + len(self._during_replay or b"")

    # --- lifetime ---
    def wait_closed(self) -> None:
        """Block this (request) greenlet until the peer hangs up or we close the stream."""
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except OSError as exc:
                self.close(CloseReason.GONE, exc.__class__.__name__)
                break
            if not data:
                self.close(CloseReason.CLIENT_CLOSED)
                break

    def close(self, reason: CloseReason, detail: str = "") -> None:
        """End the stream; ``detail`` (an error's name, a timeout) goes to the log with a slow client's reason."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        if reason.slow:
            log.info("stream %s dropped: %s%s", self.id, reason.value, f" ({detail})" if detail else "")
        self._pending.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._drainer is not None and self._drainer is not gevent.getcurrent():
            self._drainer.kill(block=False)
        self._on_close(self, reason)

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "channels": sorted(self.types),
            "remote": self.remote,
            "connectedAt": _iso(self.connected_at),
            "lastEventAt": _iso(self.last_event_at) if self.last_event_at else None,
            "bytesSent": self.bytes_sent,
            "messagesSent": self.messages_sent,
            "buffered": self.buffered,
        }


def _iso(ts: float) -> str:
    return utc_iso(ts)
