"""Real local HTTP servers standing in for a supplier and the marketplaces (their servers cannot exist here)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonServer:
    """An HTTP server on 127.0.0.1 (free port) answering from ``self.route(method, path, body)``.

    ``route`` returns (status, json_body) or a float to sleep that long first (a hung remote).
    Every request is kept in ``self.requests``.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with server.lock:
                    server.requests.append((self.command, self.path, body))
                status, payload, delay = server.route(self.command, self.path, body)
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode() if payload is not None else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any, float]:
        return 404, {"error": "no route"}, 0.0

    def start(self) -> JsonServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def calls(self, method: str | None = None, prefix: str = "") -> list[tuple[str, str, Any]]:
        with self.lock:
            return [r for r in self.requests if (method is None or r[0] == method) and r[1].startswith(prefix)]


class FakeSupplier(JsonServer):
    """``items[(source, item_id)] = {"available": bool, "price_jpy": int}``; ``failures`` answer 503 first."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.failures: dict[tuple[str, str], int] = {}
        self.delay = 0.0

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any, float]:
        parts = path.strip("/").split("/")
        if method != "GET" or len(parts) != 3 or parts[0] != "items":
            return 404, {"error": "no route"}, 0.0
        key = (parts[1], parts[2])
        with self.lock:
            if self.failures.get(key, 0) > 0:
                self.failures[key] -= 1
                return 503, {"error": "supplier busy"}, 0.0
        if key not in self.items:
            return 404, {"error": "item gone"}, self.delay
        return 200, self.items[key], self.delay


class FakeMarketplace(JsonServer):
    """Listings by SKU (idempotent create); ``refuse[sku] = reason`` answers 422; ``unavailable`` answers 503."""

    def __init__(self) -> None:
        super().__init__()
        self.listings: dict[str, str] = {}
        self.prices: dict[str, str] = {}
        self.ended: list[str] = []
        self.refuse: dict[str, str] = {}
        self.unavailable = False
        self.delay = 0.0

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any, float]:
        if self.unavailable:
            return 503, {"error": "marketplace down"}, 0.0
        parts = path.strip("/").split("/")
        if method == "POST" and len(parts) == 2 and parts[1] == "listings":
            sku = body["sku"]
            if sku in self.refuse:
                return 422, {"error": self.refuse[sku]}, self.delay
            with self.lock:
                listing_id = self.listings.setdefault(sku, f"{parts[0]}-{len(self.listings) + 1}")
            return 201, {"listing_id": listing_id}, self.delay
        if method == "PUT" and len(parts) == 4 and parts[3] == "price":
            self.prices[parts[2]] = body["price"]
            return 200, {"ok": True}, self.delay
        if method == "DELETE" and len(parts) == 3:
            self.ended.append(parts[2])
            return 204, None, self.delay
        return 404, {"error": "no route"}, 0.0
