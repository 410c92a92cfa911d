"""A dashboard-like test client: one stream, reconnecting with Last-Event-ID, recording what it got."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from tests.sse_client import SSEClient


@dataclass
class Connection:
    url: str
    process_id: str
    resumed: bool
    opened_at: float


@dataclass
class ResumingClient:
    """Reads ``url`` in a thread; on EOF or error it reconnects after ``retry_s`` with its last id."""

    url: str
    headers: dict[str, str]
    retry_s: float = 0.2
    read_timeout_s: float = 10.0
    received: list[str] = field(default_factory=list)  # bus ids, in arrival order (duplicates kept)
    events: list[dict] = field(default_factory=list)  # the events themselves, in the same order
    resets: list[dict] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_id: str | None = None
    heartbeats: int = 0
    fallback_urls: tuple[str, ...] = ()  # tried in turn after a failure (other gateway hosts)
    netns: str | None = None  # a network namespace to run in (a client host of a topology test)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._client: SSEClient | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.connected = threading.Event()

    def start(self) -> ResumingClient:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._client is not None:
                self._client.close()
        self._thread.join(timeout=15)

    @property
    def process_id(self) -> str | None:
        return self.connections[-1].process_id if self.connections else None

    def got(self) -> set[str]:
        return set(self.received)

    def orders(self) -> list[str]:
        """The marketplace order ids of the ORDER_RECEIVED events received, in arrival order."""
        return [e["payload"]["data"]["orderId"] for e in self.events if e["type"] == "ORDER_RECEIVED"]

    def _run(self) -> None:
        if self.netns is not None:
            from tests.topology.netns import enter_netns

            enter_netns(self.netns)
        urls, turn = (self.url, *self.fallback_urls), 0
        while not self._stop.is_set():
            url = urls[turn % len(urls)]
            headers = dict(self.headers)
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                client = SSEClient(url, headers, timeout=5)
            except (OSError, TimeoutError) as exc:
                self.errors.append(f"connect: {exc}")
                turn += 1
                time.sleep(self.retry_s)
                continue
            with self._lock:
                self._client = client
            try:
                if client.status != 200:
                    self.errors.append(f"status {client.status}: {client.body(2)[:200]}")
                    retry = float(client.headers.get("retry-after", self.retry_s))
                    client.close()
                    time.sleep(retry)
                    continue
                self._read(client, url)
            except (EOFError, OSError, TimeoutError, ValueError) as exc:
                if not self._stop.is_set():
                    self.errors.append(f"{exc.__class__.__name__}: {exc}")
            finally:
                client.close()
            if not self._stop.is_set():
                self.connected.clear()
                turn += 1
                time.sleep(self.retry_s)

    def _read(self, client: SSEClient, url: str) -> None:
        while not self._stop.is_set():
            msg = client.next(self.read_timeout_s)
            if msg.event == "connected":
                body = msg.json
                self.connections.append(Connection(url, body["processId"], body["resumed"], time.time()))
                self.connected.set()
            elif msg.event == "reset":
                self.resets.append(msg.json)
            elif msg.event == "heartbeat":
                self.heartbeats += 1
            else:
                self.events += msg.json["events"]
                self.received += [e["id"] for e in msg.json["events"]]
            if msg.id is not None:
                self.last_id = msg.id
