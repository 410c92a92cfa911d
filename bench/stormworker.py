"""One storm-client process: SSE streams that reconnect by themselves, as browsers do, and keep every id.

Each stream is bound to its own loopback source address (127.0.0.x, past the ephemeral-port
limit of one address), asks for its channels (``?channels=``), and follows the stream
protocol the way the dashboard does: it keeps the last ``id:`` as its cursor, waits the
``retry:`` it was sent after its stream ends (or after a refused connect), reconnects with
``Last-Event-ID``, and on a non-200 answer (503, 429) backs off with equal jitter like
``gateway/static/lib/backoff.js``. What a stream reads is accounted in ``bench.stormstream``.

Driven over a pipe by ``bench.storm``; one epoll loop, no asyncio.
"""

from __future__ import annotations

import errno
import heapq
import random
import select
import socket
import struct
import time
from collections import Counter
from typing import Any

from bench.loadworker import raise_nofile
from bench.stormstream import Stream, lost_and_duplicates, take

LINGER_RESET = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT eating ephemeral ports
READ_SIZE = 262144
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h
BACKOFF_BASE_MS, BACKOFF_MAX_MS = 1000, 30000


class StormWorker:
    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.ep = select.epoll()
        self.by_fd: dict[int, Stream] = {}
        self.streams: list[Stream] = []
        self.addr: tuple[str, int] = ("127.0.0.1", 0)
        self.path_headers = b""
        self.path = ""
        self.due: list[tuple[float, int]] = []  # (monotonic time, stream index): connects to make
        self.statuses: Counter[str] = Counter()
        self.restart_mark: float | None = None
        self.lazy = 0.0

    def run(self) -> None:
        raise_nofile()
        self.ep.register(self.pipe.fileno(), select.EPOLLIN)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            self._connect_due()
            for fd, _mask in self.ep.poll(0.02, 8192):
                if fd == self.pipe.fileno():
                    if not self._command():
                        return
                    continue
                stream = self.by_fd.get(fd)
                if stream is not None:
                    self._on_ready(fd, stream)
            if self.lazy:
                time.sleep(self.lazy)

    # --- commands from the runner ---
    def _command(self) -> bool:
        try:
            name, args = self.pipe.recv()
        except EOFError:
            return False
        if name == "exit":
            for stream in self.streams:
                self._close(stream)
            self.pipe.send(True)
            return False
        if name == "open":
            host, port, path, headers, specs, spread_s, self.lazy = args
            self.addr = (host, port)
            self.path_headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
            self.path = path
            now = time.monotonic()
            for source, channels in specs:
                stream = Stream(len(self.streams), source, channels)
                stream.due = now + random.uniform(0, spread_s)
                heapq.heappush(self.due, (stream.due, len(self.streams)))
                self.streams.append(stream)
            self.pipe.send(len(specs))
        elif name == "mark_restart":
            self.restart_mark = args
            for stream in self.streams:
                stream.back_at, stream.resumed_back, stream.awaiting = None, False, False
            self.pipe.send(True)
        elif name == "progress":
            self.pipe.send(self._progress())
        elif name == "check":
            self.pipe.send(lost_and_duplicates(self.streams, args))
        return True

    def _progress(self) -> dict[str, Any]:
        live = sum(1 for s in self.streams if s.live)
        back = [s.back_at for s in self.streams if s.back_at is not None]
        return {"streams": len(self.streams), "live": live, "back": len(back),
                "resumed_back": sum(1 for s in self.streams if s.resumed_back),
                "last_back": max(back) if back else None,
                "resets": sum(s.resets for s in self.streams), "statuses": dict(self.statuses),
                "connects": sum(s.connects for s in self.streams),
                "events": sum(len(s.seen) for s in self.streams)}

    def _connect_due(self) -> None:
        now = time.monotonic()
        while self.due and self.due[0][0] <= now:
            stream = self.streams[heapq.heappop(self.due)[1]]
            if stream.sock is None:
                self._connect(stream)

    def _connect(self, stream: Stream) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        sock.setblocking(False)
        # The port is chosen at connect, unique per (source, destination): bind does not scan the ports in use.
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        try:
            sock.bind((stream.source, 0))
        except OSError:
            sock.close()
            self.statuses["bind failed"] += 1
            self._schedule(stream, 1.0)
            return
        err = sock.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self._retry_later(stream, f"connect errno {err}", network=True)
            return
        resume = f"Last-Event-ID: {stream.cursor}\r\n".encode() if stream.cursor else b""
        stream.head = (f"GET {self.path}?channels={stream.channels} HTTP/1.1\r\nHost: {self.addr[0]}\r\n"
                       f"Accept: text/event-stream\r\n").encode() + self.path_headers + resume + b"\r\n"
        stream.sock, stream.tail, stream.live = sock, b"", False
        self.by_fd[sock.fileno()] = stream
        self.ep.register(sock.fileno(), select.EPOLLOUT)

    def _retry_later(self, stream: Stream, why: str, *, network: bool) -> None:
        """A browser waits its ``retry:`` after a dropped stream or a failed connect; the dashboard
        backs off with equal jitter after an error status."""
        self.statuses[why] += 1
        if network:
            delay_ms = float(stream.retry_ms)
        else:
            ceiling = min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** stream.attempt)
            delay_ms = ceiling / 2 + random.uniform(0, ceiling / 2)
            stream.attempt += 1
        self._schedule(stream, delay_ms / 1000)

    def _schedule(self, stream: Stream, delay_s: float) -> None:
        stream.due = time.monotonic() + delay_s
        heapq.heappush(self.due, (stream.due, stream.index))

    def _close(self, stream: Stream) -> None:
        sock = stream.sock
        if sock is None:
            return
        self.by_fd.pop(sock.fileno(), None)
        try:
            self.ep.unregister(sock.fileno())
        except (OSError, ValueError):
            pass
        sock.close()
        stream.sock, stream.live = None, False

    # --- reading ---
    def _on_ready(self, fd: int, stream: Stream) -> None:
        assert stream.sock is not None
        if not stream.live and stream.head.startswith(b"GET "):
            try:
                stream.sock.send(stream.head)
            except OSError as exc:
                self._close(stream)
                self._retry_later(stream, f"connect {exc.__class__.__name__}", network=True)
                return
            stream.head = b""
            self.ep.modify(fd, select.EPOLLIN)
            return
        try:
            data = stream.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            was_live = stream.live
            self._close(stream)
            self._retry_later(stream, "stream ended" if was_live else "closed before headers", network=True)
            return
        if not stream.live:
            stream.head += data
            end = stream.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = stream.head[9:12].decode(errors="replace")
            if status != "200":
                self._close(stream)
                self._retry_later(stream, f"HTTP {status}", network=False)
                return
            stream.live, stream.attempt = True, 0
            stream.connects += 1
            data, stream.head = stream.head[end + 4:], b""
        take(stream, data, self.restart_mark is not None)

def worker_main(pipe: Any) -> None:
    StormWorker(pipe).run()
