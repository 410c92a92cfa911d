"""One load-client process: an epoll loop over raw non-blocking SSE sockets, driven over a pipe.

Per read it records, in bulk: messages (blank-line ends), heartbeats, bytes, the events a
message announces (``"count"``), and for each event carried its publish→receive latency, the
publish time being the ``<ms>`` of the event's bus id ``"id":"<ms>-<seq>"`` (same machine
clock), in 0.1 ms buckets. No asyncio: a callback per read would cost more than the read.
"""

from __future__ import annotations

import os
import re
import resource
import select
import socket
import struct
import time
from collections import Counter
from typing import Any

EVENT_ID = re.compile(rb'"id": ?"(\d{13})-\d+"')
COUNT = re.compile(rb'"count": ?(\d+)')  # events a message stands for (a truncated batch carries fewer)
HEARTBEAT = b"event: heartbeat"
CONNECTED = b"event: connected"
LINGER_RESET = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT eating ephemeral ports
MAX_OUTSTANDING = 400  # connects in flight per process (keeps the server's accept backlog sane)
READ_SIZE = 262144
PROBE_SHARE = 0.1


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (20,000 here); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class _Conn:
    __slots__ = ("sock", "head", "tail", "live", "last_hb", "msgs")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.head = b""
        self.tail = b""
        self.live = False  # headers received with 200
        self.last_hb = 0.0
        self.msgs = 0


def _fresh_stats() -> dict[str, Any]:
    return {"messages": 0, "heartbeats": 0, "events": 0, "announced": 0, "bytes": 0, "reads": 0, "first_ms": None,
            "last_ms": None, "hb_gap_ms": 0.0, "closed": 0, "hist": Counter()}


class _Worker:
    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.ep = select.epoll()
        self.conns: dict[int, _Conn] = {}
        self.stats = _fresh_stats()
        self.lazy = 0.0
        self.record_latency = True
        self.connecting: dict[str, Any] | None = None
        self.mark_ms = time.time() * 1000
        self.mark_cpu = 0.0

    # --- the loop ---
    def run(self) -> None:
        raise_nofile()
        self.ep.register(self.pipe.fileno(), select.EPOLLIN)
        deadline = time.monotonic() + 4 * 3600  # a worker never outlives a forgotten runner for long
        while time.monotonic() < deadline:
            if self.connecting:
                self._connect_more()
            for fd, _mask in self.ep.poll(0.02 if self.connecting else 0.2, 8192):
                if fd == self.pipe.fileno():
                    if not self._command():
                        return
                    continue
                conn = self.conns.get(fd)
                if conn is not None:
                    self._read(fd, conn)
            if self.lazy:
                time.sleep(self.lazy)

    def _command(self) -> bool:
        try:
            name, args = self.pipe.recv()
        except EOFError:
            return False
        if name == "exit":
            self._close_all()
            self.pipe.send(True)
            return False
        if name == "connect":
            host, port, request, n, timeout, wait_headers, *source = args
            self.connecting = {"addr": (host, port), "request": request, "todo": n, "out": set(),
                               "source": source[0] if source else None,
                               "wait_headers": wait_headers,
                               "ok": 0, "failed": Counter(), "t0": time.monotonic(),
                               "deadline": time.monotonic() + timeout}
            return True  # answered when done
        if name == "mark":
            self.lazy, self.record_latency = args
            self.stats = _fresh_stats()
            now = time.time() * 1000
            self.mark_ms = now
            self.mark_cpu = sum(os.times()[:2])
            for conn in self.conns.values():
                conn.last_hb = now
                conn.msgs = 0
            self.pipe.send(True)
        elif name == "stats":
            self.pipe.send(self._snapshot())
        elif name == "close":
            self.pipe.send(self._close_all())
        return True

    # --- connecting ---
    def _connect_more(self) -> None:
        c = self.connecting
        assert c is not None
        while c["todo"] > 0 and len(c["out"]) < MAX_OUTSTANDING:
            c["todo"] -= 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            sock.setblocking(False)
            if c["source"]:  # a loopback source address of its own: 28k more ephemeral ports
                sock.bind((c["source"], 0))
            err = sock.connect_ex(c["addr"])
            if err not in (0, 115):  # EINPROGRESS
                c["failed"][f"connect errno {err}"] += 1
                sock.close()
                continue
            conn = _Conn(sock)
            conn.head = c["request"]  # to send once writable
            self.conns[sock.fileno()] = conn
            c["out"].add(sock.fileno())
            self.ep.register(sock.fileno(), select.EPOLLOUT)
        if (c["todo"] == 0 and not c["out"]) or time.monotonic() > c["deadline"]:
            for fd in list(c["out"]):
                c["failed"]["timeout"] += 1
                self._drop(fd)
            self.pipe.send({"ok": c["ok"], "failed": dict(c["failed"]),
                            "seconds": time.monotonic() - c["t0"]})
            self.connecting = None

    def _settle(self, fd: int, failure: str | None) -> None:
        c = self.connecting
        if c is None or fd not in c["out"]:
            return
        c["out"].discard(fd)
        if failure is None:
            c["ok"] += 1
        else:
            c["failed"][failure] += 1

    # --- reading ---
    def _read(self, fd: int, conn: _Conn) -> None:
        if not conn.live and isinstance(conn.head, bytes) and conn.head.startswith(b"GET "):
            self._send_request(fd, conn)
            return
        try:
            data = conn.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            data = b""
            self._settle(fd, f"recv {exc.__class__.__name__}")
        if not data:
            self._settle(fd, "closed before headers")
            if conn.live:
                self.stats["closed"] += 1
            self._drop(fd)
            return
        if not conn.live:
            conn.head += data
            end = conn.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = conn.head[9:12]
            if status != b"200":
                self._settle(fd, f"HTTP {status.decode(errors='replace')}")
                self._drop(fd)
                return
            conn.live = True
            data = conn.head[end + 4:]
            conn.head = b""
            self._settle(fd, None)
        now = time.time() * 1000
        st = self.stats
        st["bytes"] += len(data)
        st["reads"] += 1
        buf = conn.tail + data if conn.tail else data
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            conn.tail = buf
            return
        done = buf[:cut + 2]
        conn.tail = buf[cut + 2:]
        total = done.count(b"\n\n")
        beats = done.count(HEARTBEAT) if b"heartbeat" in done else 0
        if beats:
            gap = now - conn.last_hb
            if gap > st["hb_gap_ms"]:
                st["hb_gap_ms"] = gap
            conn.last_hb = now
        messages = total - beats - (done.count(CONNECTED) if b"connected" in done else 0)
        st["heartbeats"] += beats
        if messages:
            conn.msgs += messages
            st["messages"] += messages
            st["announced"] += sum(map(int, COUNT.findall(done)))
            ids = EVENT_ID.findall(done)
            if ids:
                st["events"] += len(ids)
                if self.record_latency:
                    st["hist"].update([int((now - int(ms)) * 10) for ms in ids])
                if st["first_ms"] is None:
                    st["first_ms"] = now
                st["last_ms"] = now

    def _send_request(self, fd: int, conn: _Conn) -> None:
        try:
            conn.sock.send(conn.head)
        except OSError as exc:
            self._settle(fd, f"connect {exc.__class__.__name__}")
            self._drop(fd)
            return
        conn.head = b""
        self.ep.modify(fd, select.EPOLLIN)
        if self.connecting and not self.connecting["wait_headers"]:
            self._settle(fd, None)  # flask-sse sends its headers only with the first message

    def _drop(self, fd: int) -> None:
        conn = self.conns.pop(fd, None)
        if conn is None:
            return
        try:
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass
        conn.sock.close()
        if self.connecting:
            self.connecting["out"].discard(fd)

    def _close_all(self) -> int:
        n = len(self.conns)
        for fd in list(self.conns):
            self._drop(fd)
        return n

    def _snapshot(self) -> dict[str, Any]:
        now = time.time() * 1000
        st = dict(self.stats)
        live = [c for c in self.conns.values() if c.live]
        st["open"] = len(self.conns)
        st["live"] = len(live)
        if live:
            st["hb_gap_ms"] = max(st["hb_gap_ms"], max(now - c.last_hb for c in live))
            counts = [c.msgs for c in live]
            st["per_client"] = (min(counts), max(counts), sum(counts))
        else:
            st["per_client"] = (0, 0, 0)
        st["cpu_s"] = sum(os.times()[:2]) - self.mark_cpu
        st["since_mark_ms"] = now - self.mark_ms
        return st


def worker_main(pipe: Any) -> None:
    _Worker(pipe).run()
