"""Signed Joom and eBay deliveries, sent over keep-alive HTTP/1.1 by several sender processes.

Every delivery is unique (its own delivery id, notification id and order id; half Joom, half
eBay) and signed the way the marketplace signs it. The requests are built and signed before
the clock starts, so the measured phase only writes bytes and reads answers (asyncio streams,
no HTTP library), and each process reports the CPU it used: the sender must not be what limits
the rate.

Two ways to send:

* ``closed``: C connections in all, each sending its next delivery as soon as the previous
  one is answered (the most the server accepts per second).
* ``open``: a fixed schedule of R deliveries per second whatever the server does; a delivery
  whose connection is busy goes out on a new one. Latency runs from the *scheduled* send time
  to the last byte of the answer, so a stall of the server (or of the sender) shows in it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import multiprocessing
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.webhook_signatures import sign_ebay, sign_joom
from tasks.sample_webhooks import EBAY_SAMPLE, JOOM_SAMPLE


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    joom_secret: str
    ebay_secret: str


@dataclass
class SenderResult:
    """What one sender process saw; ``merge`` adds them up."""

    statuses: Counter[int] = field(default_factory=Counter)
    queued: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_s: float = 0.0
    first_send: float = float("inf")
    last_answer: float = 0.0

    def merge(self, other: SenderResult) -> None:
        self.statuses.update(other.statuses)
        self.queued += other.queued
        self.latencies_ms += other.latencies_ms
        self.errors += other.errors
        self.cpu_s += other.cpu_s
        self.first_send = min(self.first_send, other.first_send)
        self.last_answer = max(self.last_answer, other.last_answer)


def signed_request(target: Target, tag: str, index: int) -> bytes:
    """One unique delivery as raw HTTP/1.1 bytes: Joom for even ``index``, eBay for odd."""
    if index % 2 == 0:
        body: dict[str, Any] = copy.deepcopy(JOOM_SAMPLE)
        body["order"]["id"] = f"JO-{tag}-{index}"
        raw = json.dumps(body).encode()
        path = "/api/webhooks/joom"
        headers = {"X-Joom-Signature": sign_joom(target.joom_secret, raw), "X-Joom-Delivery-Id": f"{tag}-{index}"}
    else:
        body = copy.deepcopy(EBAY_SAMPLE)
        body["metadata"]["notificationId"] = f"{tag}-{index}"
        body["notification"]["data"]["orderId"] = f"EB-{tag}-{index}"
        raw = json.dumps(body).encode()
        path = "/api/webhooks/ebay"
        timestamp = str(int(time.time()))
        headers = {"X-EBAY-TIMESTAMP": timestamp, "X-EBAY-SIGNATURE": sign_ebay(target.ebay_secret, timestamp, raw)}
    lines = [f"POST {path} HTTP/1.1", f"Host: {target.host}:{target.port}", "Content-Type: application/json",
             f"Content-Length: {len(raw)}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


class Connection:
    """One keep-alive connection: send a request, read its answer (status, JSON body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, target: Target) -> Connection:
        return cls(*await asyncio.open_connection(target.host, target.port))

    async def exchange(self, request: bytes) -> tuple[int, dict[str, Any]]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        length = 0
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        return int(status_line.split(b" ", 2)[1]), json.loads(body) if body else {}

    def close(self) -> None:
        self.writer.close()


def record(result: SenderResult, status: int, answer: dict[str, Any], started: float) -> None:
    now = time.monotonic()
    result.statuses[status] += 1
    result.queued += answer.get("queued") is True
    result.latencies_ms.append((now - started) * 1000)
    result.last_answer = max(result.last_answer, now)


async def send_closed(target: Target, requests: list[bytes], connections: int, start_at: float) -> SenderResult:
    result = SenderResult()
    pending = list(reversed(requests))
    conns = [await Connection.open(target) for _ in range(connections)]
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))

    async def drive(conn: Connection) -> None:
        while pending:
            request = pending.pop()
            started = time.monotonic()
            result.first_send = min(result.first_send, started)
            try:
                status, answer = await conn.exchange(request)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
                conn.close()
                conn = await Connection.open(target)
                continue
            record(result, status, answer, started)

    await asyncio.gather(*(drive(conn) for conn in conns))
    for conn in conns:
        conn.close()
    return result


async def send_open(target: Target, requests: list[bytes], schedule: list[float], start_at: float) -> SenderResult:
    result = SenderResult()
    idle = [await Connection.open(target) for _ in range(4)]

    async def send_one(request: bytes, due: float) -> None:
        # An idle keep-alive connection may have been closed by the server (gunicorn's keepalive):
        # then the delivery goes again on a new one, still timed from its scheduled time.
        conn = idle.pop() if idle else None
        for reused in (conn is not None, False):
            try:
                if conn is None:
                    conn = await Connection.open(target)
                status, answer = await conn.exchange(request)
                break
            except (OSError, asyncio.IncompleteReadError, ValueError):
                if conn is not None:
                    conn.close()
                conn = None
                if not reused:
                    result.errors += 1
                    return
        assert conn is not None
        record(result, status, answer, due)
        idle.append(conn)

    tasks = []
    for request, offset in zip(requests, schedule, strict=True):
        due = start_at + offset
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        result.first_send = min(result.first_send, due)
        tasks.append(asyncio.create_task(send_one(request, due)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return result


def _sender_process(target: Target, tag: str, indexes: range, mode: str, connections: int, rate: float,
                    ready: Any, start: Any, out: Any) -> None:
    requests = [signed_request(target, tag, i) for i in indexes]
    ready.put(True)
    start_at = start.get()
    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    if mode == "closed":
        result = asyncio.run(send_closed(target, requests, connections, start_at))
    else:  # indexes step by the process count: delivery i is due at i / rate
        result = asyncio.run(send_open(target, requests, [i / rate for i in indexes], start_at))
    result.cpu_s = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
    out.put(result)


def send(target: Target, tag: str, count: int, *, mode: str, processes: int, connections: int = 0,
         rate: float = 0.0) -> tuple[SenderResult, float]:
    """Send ``count`` deliveries from ``processes`` processes; (merged result, wall seconds).

    ``closed``: ``connections`` in all, shared out between the processes; ``open``: ``rate``/s in all.
    """
    # fork: the senders start at once with everything imported (the parent runs no threads here).
    ctx = multiprocessing.get_context("fork")
    ready, start, out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    per_process = max(1, connections // processes)
    procs = [ctx.Process(target=_sender_process, daemon=True,
                         args=(target, tag, range(p, count, processes), mode, per_process, rate, ready, start, out))
             for p in range(processes)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)
    start_at = time.monotonic() + 0.3
    for _ in procs:
        start.put(start_at)
    merged = SenderResult()
    for _ in procs:
        merged.merge(out.get(timeout=600))
    for proc in procs:
        proc.join(timeout=10)
    return merged, merged.last_answer - start_at
