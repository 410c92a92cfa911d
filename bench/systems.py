"""The three servers under test: how to start each, reach its stream, publish to it, and measure it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import redis

from bench import procstat
from bench.publishers import CeilingPublisher, FlaskSsePublisher, GatewayPublisher, Publisher

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"


def free_port() -> int:
    """A free port: the first one in ``BENCH_PORTS`` (``first-last``) if set, else any."""
    first, _, last = os.environ.get("BENCH_PORTS", "").partition("-")
    candidates = range(int(first), int(last) + 1) if first and last else [0]
    for port in candidates:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in BENCH_PORTS={os.environ['BENCH_PORTS']}")


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy after {timeout:g}s")


class System:
    """One server under test, started fresh for each measurement and stopped after it."""

    name = ""
    label = ""

    def __init__(self, redis_url: str, heartbeat_ms: int, debounce_ms: int = 0) -> None:
        self.redis_url = redis_url
        self.heartbeat_ms = heartbeat_ms
        self.debounce_ms = debounce_ms
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{self.name}-", suffix=".log", delete=False)

    # --- what each system defines ---
    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    health_path = "/health"
    stream_path = "/events"
    wait_headers = True  # does the server send its headers before the first message?

    def stream_headers(self) -> dict[str, str]:
        return {}

    def publisher(self) -> Publisher:
        raise NotImplementedError

    # --- lifecycle ---
    def start(self) -> System:
        env = {**os.environ, **self.env(), "PORT": str(self.port), "WEB_CONCURRENCY": "1"}
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_healthy(f"http://127.0.0.1:{self.port}{self.health_path}", self.proc)
        return self

    def stop(self, keep_log: bool = False) -> None:
        self.log.close()
        if not keep_log:
            Path(self.log.name).unlink(missing_ok=True)
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # gunicorn's quick shutdown: a graceful one would wait for flask-sse's streams, which
            # never notice that their clients left (no heartbeat).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        text = Path(self.log.name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    # --- measuring ---
    @property
    def worker_pid(self) -> int:
        """The process that holds the streams (gunicorn's one worker, or the ceiling itself)."""
        assert self.proc is not None
        return self.proc.pid

    def rss_kb(self) -> int:
        return procstat.rss_kb(self.worker_pid)

    def cpu_s(self) -> float:
        return procstat.cpu_seconds(self.worker_pid)

    def redis_connections(self) -> int:
        port = int(self.redis_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        return procstat.tcp_connections_to(self.worker_pid, port)

    def wait_subscribed(self, n: int, timeout: float) -> int:
        """Wait until ``n`` streams would receive a publish; returns how many do."""
        return n


class Gunicorn(System):
    app = ""
    config = "gateway/gunicorn_conf.py"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "-c", self.config, self.app]

    @property
    def worker_pid(self) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = procstat.children(self.proc.pid)
            if children:
                return children[0]
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn {self.proc.pid} has no worker")


class Gateway(Gunicorn):
    name, label = "gateway", "this gateway"
    app = "gateway.app:create_app()"
    health_path = "/api/health"

    @property
    def stream_path(self) -> str:  # type: ignore[override]
        return "/api/realtime/events"

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.redis_url, "API_KEYS": API_KEY, "SECRET_KEY": "bench-secret",
                "SSE_HEARTBEAT_INTERVAL": str(self.heartbeat_ms), "SSE_DEBOUNCE_WINDOW": str(self.debounce_ms),
                "SSE_MAX_CONNECTIONS": "19000", "REALTIME_HISTORY_MAX": "200000",
                # Every load client is one key on one address: its limits must not cap the load.
                "SSE_MAX_STREAMS_PER_KEY": "40000", "SSE_MAX_STREAMS_PER_ADDRESS": "40000",
                "SSE_NEW_STREAMS_PER_ADDRESS_RATE": "0",
                "ACCESS_LOG": "/dev/null", "LOG_LEVEL": "warning"}

    def stream_headers(self) -> dict[str, str]:
        return {"X-API-Key": API_KEY}

    def publisher(self) -> Publisher:
        return GatewayPublisher(self.redis_url)


class GatewayNagle(Gateway):
    """The gateway with TCP_NODELAY off on its streams (see bench/gunicorn_nagle_conf.py)."""

    name, label = "gateway-nagle", "this gateway, TCP_NODELAY off"
    config = "bench/gunicorn_nagle_conf.py"


class FlaskSse(Gunicorn):
    name, label = "flask-sse", "flask-sse 1.0.0"
    app = "bench.flasksse_app:create_app()"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Pub/Sub channels are global to a Redis server: a private name keeps others' messages out.
        self.channel = f"bench-{uuid.uuid4().hex[:8]}"

    @property
    def stream_path(self) -> str:  # type: ignore[override]
        return f"/stream?channel={self.channel}"

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.redis_url, "SSE_MAX_CONNECTIONS": "19000", "ACCESS_LOG": "/dev/null",
                "LOG_LEVEL": "warning"}

    wait_headers = False

    def publisher(self) -> Publisher:
        return FlaskSsePublisher(self.redis_url, self.channel)

    def wait_subscribed(self, n: int, timeout: float) -> int:
        client = redis.Redis.from_url(self.redis_url)
        try:
            deadline = time.monotonic() + timeout
            while True:
                count = int(client.pubsub_numsub(self.channel)[0][1])
                if count >= n or time.monotonic() > deadline:
                    return count
                time.sleep(0.1)
        finally:
            client.close()


class Ceiling(System):
    name, label = "ceiling", "bare gevent ceiling"
    nodelay = False

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.ceiling", "--port", str(self.port), "--heartbeat-ms",
                str(self.heartbeat_ms)] + (["--nodelay"] if self.nodelay else [])

    def publisher(self) -> Publisher:
        return CeilingPublisher(f"http://127.0.0.1:{self.port}")

    def redis_connections(self) -> int:
        return 0


class CeilingNoDelay(Ceiling):
    """The ceiling with gunicorn's socket option: every write leaves at once, none is coalesced."""

    name, label = "ceiling-nodelay", "bare ceiling, TCP_NODELAY"
    nodelay = True


# Variants that differ from their system only in one socket option: run where it matters.
VARIANTS: dict[str, tuple[str, ...]] = {"ceiling-nodelay": ("fanout", "latency"),
                                        "gateway-nagle": ("fanout", "latency")}

SYSTEMS: dict[str, type[System]] = {"ceiling": Ceiling, "ceiling-nodelay": CeilingNoDelay, "gateway": Gateway,
                                    "gateway-nagle": GatewayNagle, "flask-sse": FlaskSse}


class PrivateRedis:
    """A redis-server of our own (no persistence, default maxclients) so the run disturbs nobody."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; pass --redis-url")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def clear_bench_keys(redis_url: str) -> None:
    """Drop the gateway's history and counters in the bench database between systems."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter("rakuda:realtime:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
    finally:
        client.close()



def to_json(value: object) -> str:
    return json.dumps(value, indent=2, default=str)
