"""A small blocking SSE client over a raw socket, for tests: exact bytes, explicit timeouts.

It decodes HTTP/1.1 chunking itself, so a read that times out leaves the client usable.
"""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Message:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    received_at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class SSEClient:
    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._raw = b""  # bytes off the socket, not yet de-chunked
        self._body = b""  # response body bytes not yet consumed
        self._eof = False
        self._data_left = 0  # bytes of the current chunk still to come
        self._crlf_left = 0  # and of the CRLF that ends it
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self._raw:
            self._recv(deadline)
        head, self._raw = self._raw.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "")
        self._length = int(self.headers["content-length"]) if "content-length" in self.headers else None
        self.last_id: str | None = None
        self.closed = False
        self._decode()

    # --- bytes ---
    def _recv(self, deadline: float) -> None:
        if self._eof:
            raise EOFError("stream closed by the server")
        remaining = deadline - time.time()
        if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
            raise TimeoutError("no data in time")
        data = self.sock.recv(65536)
        if not data:
            self._eof = True
            raise EOFError("stream closed by the server")
        self._raw += data

    def _decode(self) -> None:
        if not self.chunked:
            self._body += self._raw
            self._raw = b""
            return
        while self._raw:
            if self._data_left == 0 and self._crlf_left == 0:
                if b"\r\n" not in self._raw:
                    return
                size_line, self._raw = self._raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._eof = True
                    return
                self._data_left, self._crlf_left = size, 2
            if self._data_left:
                take = min(self._data_left, len(self._raw))
                self._body += self._raw[:take]
                self._data_left -= take
            else:
                take = min(self._crlf_left, len(self._raw))
                self._crlf_left -= take
            self._raw = self._raw[take:]

    def _readline(self, deadline: float) -> bytes:
        while b"\n" not in self._body:
            if self._eof:
                raise EOFError("stream closed by the server")
            self._recv(deadline)
            self._decode()
        line, self._body = self._body.split(b"\n", 1)
        return line

    def body(self, timeout: float = 10.0) -> str:
        """The whole (non-stream) body, e.g. of an error response."""
        deadline = time.time() + timeout
        try:
            while not self._eof and (self._length is None or len(self._body) < self._length):
                self._recv(deadline)
                self._decode()
        except EOFError:
            pass
        return self._body.decode()

    # --- messages ---
    def next(self, timeout: float = 10.0) -> Message:
        """The next message (comments skipped); TimeoutError if none arrives in time."""
        deadline = time.time() + timeout
        msg = Message()
        seen_field = False
        data_lines: list[str] = []
        while True:
            try:
                raw = self._readline(deadline)
            except TimeoutError:
                raise TimeoutError(f"no SSE message within {timeout}s") from None
            line = raw.decode().rstrip("\r")
            if line == "":
                if seen_field:
                    msg.data = "\n".join(data_lines)
                    msg.received_at = time.time()
                    if msg.id is not None:
                        self.last_id = msg.id
                    return msg
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            seen_field = True
            if name == "data":
                data_lines.append(value)
            elif name == "event":
                msg.event = value
            elif name == "id":
                msg.id = value
            elif name == "retry":
                msg.retry = int(value)

    def next_event(self, timeout: float = 10.0, skip: tuple[str, ...] = ("heartbeat",)) -> Message:
        """The next message that is not one of ``skip``."""
        deadline = time.time() + timeout
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise TimeoutError(f"no message other than {skip} within {timeout}s")
            msg = self.next(remaining)
            if msg.event not in skip:
                return msg

    def collect(self, seconds: float) -> list[Message]:
        """Every message received during the next ``seconds``."""
        out: list[Message] = []
        deadline = time.time() + seconds
        while (remaining := deadline - time.time()) > 0:
            try:
                out.append(self.next(remaining))
            except TimeoutError:
                break
        return out

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> SSEClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
