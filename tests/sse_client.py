"""A small blocking SSE client over http.client, for tests: exact bytes, explicit timeouts."""

from __future__ import annotations

import http.client
import json
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
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.last_id: str | None = None
        self.closed = False

    def body(self) -> str:
        return self.response.read().decode()

    def next(self, timeout: float = 10.0) -> Message:
        """The next message (comments skipped); TimeoutError if none arrives in time."""
        self.conn.sock.settimeout(timeout)
        msg = Message()
        seen_field = False
        data_lines: list[str] = []
        while True:
            try:
                raw = self.response.readline()
            except TimeoutError:
                raise TimeoutError(f"no SSE message within {timeout}s") from None
            if not raw:
                self.closed = True
                raise EOFError("stream closed by the server")
            line = raw.decode().rstrip("\r\n")
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
        self.closed = True
        try:
            self.conn.sock.shutdown(2) if self.conn.sock else None
        except OSError:
            pass
        self.conn.close()

    def __enter__(self) -> SSEClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
