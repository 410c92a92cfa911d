"""The bare ceiling: the smallest gevent program that streams the gateway's SSE bytes to every client.

No Flask, no Redis, no debounce: it accepts HTTP connections, answers ``/events`` with
the same headers and framing as the gateway (chunked ``event: <TYPE>`` messages with a bus-
style id), and on ``GET /fire?count=&rate=`` encodes each message once and writes it to all
sockets with ``os.write``, buffering only what the kernel refuses. What the gateway does
beyond this is the framework's cost.

    python -m bench.ceiling --port 5099 --heartbeat-ms 2000
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402
from gevent.socket import wait_write  # noqa: E402

from bench.events import TYPES, batch_json, bus_id, event_json_with_id  # noqa: E402
from bench.loadworker import raise_nofile  # noqa: E402

HEADERS = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, no-store\r\n"
           b"X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n")
BUFFER_LIMIT = 1 << 20


def chunk(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(body), body)


def sse(data: str, event: str, sid: str | None = None) -> bytes:
    head = f"id: {sid}\n" if sid else ""
    return chunk(f"{head}event: {event}\ndata: {data}\n\n".encode())


class Client:
    __slots__ = ("fd", "pending", "gone")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = bytearray()
        self.gone = False

    def send(self, data: bytes) -> None:
        if self.gone:
            return
        if self.pending:
            if len(self.pending) + len(data) > BUFFER_LIMIT:
                self.gone = True
            else:
                self.pending += data
            return
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            self.gone = True
            return
        if written < len(data):
            self.pending += data[written:]
            gevent.spawn(self.drain)

    def drain(self) -> None:
        while self.pending and not self.gone:
            try:
                wait_write(self.fd, timeout=10)
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                continue
            except OSError:
                self.gone = True
                return
            del self.pending[:written]


class Ceiling:
    def __init__(self, heartbeat_ms: int, nodelay: bool) -> None:
        self.nodelay = nodelay
        self.clients: dict[int, Client] = {}
        self.heartbeat_ms = heartbeat_ms
        self.seq = 0

    def handle(self, sock, _addr) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data or len(head) > 16384:
                sock.close()
                return
            head += data
        target = head.split(b" ", 2)[1].decode()
        path, _, query = target.partition("?")
        if path == "/events":
            self.stream(sock)
        elif path == "/fire":
            args = {k: v[0] for k, v in parse_qs(query).items()}
            result = self.fire(int(args.get("count", "1")), float(args.get("rate", "0")))
            self.reply(sock, json.dumps(result).encode())
        elif path == "/health":
            self.reply(sock, json.dumps({"clients": len(self.clients)}).encode())
        else:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            sock.close()

    @staticmethod
    def reply(sock, body: bytes) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        sock.close()

    def stream(self, sock) -> None:
        hello = json.dumps({"heartbeatInterval": self.heartbeat_ms, "debounceWindow": 0})
        if self.nodelay:  # as gunicorn sets it on its listener (so on every stream of the gateway)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(HEADERS + chunk(b"retry: 3000\n") + sse(hello, "connected"))
        client = Client(sock.fileno())
        self.clients[client.fd] = client
        try:
            while not client.gone:
                if not sock.recv(4096):
                    break
        except OSError:
            pass
        finally:
            client.gone = True
            self.clients.pop(client.fd, None)
            sock.close()

    def fire(self, count: int, rate: float) -> dict:
        """Write ``count`` messages to every client, ``rate`` per second (0: back to back)."""
        t0 = time.monotonic()
        writes = 0
        for i in range(count):
            if rate:
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    gevent.sleep(delay)
            self.seq += 1
            event_type = TYPES[i % len(TYPES)]
            sid = bus_id(int(time.time() * 1000), self.seq)
            message = sse(batch_json(event_type, [event_json_with_id(event_type, self.seq, sid)]), event_type, sid)
            for client in list(self.clients.values()):
                client.send(message)
                writes += 1
            gevent.sleep(0)  # let accepts and hang-ups through, as the gateway's loop does
        return {"messages": count, "writes": writes, "seconds": time.monotonic() - t0}

    def beat_forever(self) -> None:
        while True:
            gevent.sleep(self.heartbeat_ms / 1000)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            message = sse(json.dumps({"time": now}), "heartbeat")
            for client in list(self.clients.values()):
                client.send(message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--heartbeat-ms", type=int, default=30000)
    parser.add_argument("--nodelay", action="store_true", help="TCP_NODELAY on each stream, as gunicorn does")
    args = parser.parse_args()
    raise_nofile()
    ceiling = Ceiling(args.heartbeat_ms, args.nodelay)
    gevent.spawn(ceiling.beat_forever)
    server = StreamServer(("127.0.0.1", args.port), ceiling.handle, backlog=4096)
    server.serve_forever()


if __name__ == "__main__":
    main()
