"""Local HTTP servers standing in for Discord, LINE and a Standard Webhooks receiver.

Each records every request it answered 2xx to; ``script`` decides the answer per request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]
Script = Callable[[int, "Received"], Answer]


def always_ok(_n: int, _r: Received) -> Answer:
    return 200, {}, b"{}"


@dataclass
class Receiver:
    script: Script = always_ok
    accepted: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                rec = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                               self.rfile.read(length), time.time())
                with owner.lock:
                    n = len(owner.accepted) + len(owner.refused)
                    status, headers, body = owner.script(n, rec)
                    (owner.accepted if 200 <= status < 300 else owner.refused).append(rec)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.json() for r in self.accepted]
