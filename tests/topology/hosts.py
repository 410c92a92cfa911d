"""The whole deployment on namespace hosts, every process the one production runs.

    db      .10  redis-server, and a private PostgreSQL cluster (initdb + postgres)
    gw1     .11  the Procfile's web process (gunicorn + gevent)
    gw2     .12  the same, a second gateway host
    worker  .13  the Procfile's worker (Celery, prefork) and beat (it fires the outbox relay)
    client  .14  the dashboards' streams, and the marketplace that POSTs signed webhooks

Events come the production way: a signed Joom delivery POSTed to a gateway is stored in
PostgreSQL and handed by name to the worker, which commits the order and its ORDER_RECEIVED
in one transaction and publishes it through the outbox.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import requests

from shared.webhook_signatures import sign_joom
from tests.servers import ROOT, procfile_command
from tests.topology.netns import Topology, enter_netns
from tests.topology.pg_host import PostgresHost
from tests.waiting import eventually

T = TypeVar("T")
KEY = {"X-API-Key": "test-key"}
JOOM_SECRET = "joom-topology-secret"
HEARTBEAT_MS, SEND_TIMEOUT_MS = 1000, 2000
COMMON_ENV = {
    "API_KEYS": "test-key", "ADMIN_API_KEYS": "test-key", "SECRET_KEY": "test-secret",
    "JOOM_WEBHOOK_SECRET": JOOM_SECRET, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT),
}
GATEWAY_ENV = {
    "SSE_HEARTBEAT_INTERVAL": str(HEARTBEAT_MS), "SSE_SEND_TIMEOUT": str(SEND_TIMEOUT_MS),
    "SSE_DEBOUNCE_WINDOW": "100", "REALTIME_REPORT_INTERVAL": "0.5", "WEB_CONCURRENCY": "1", "PORT": "5000",
    "ACCESS_LOG": "-", "SSE_MAX_STREAMS_PER_KEY": "100000", "SSE_MAX_STREAMS_PER_ADDRESS": "100000",
    "SSE_NEW_STREAMS_PER_ADDRESS_RATE": "0",
}
# The worker host runs deliveries and the outbox relay (every second); the other periodic tasks are off.
WORKER_ENV = {
    "WORKER_CONCURRENCY": "2", "OUTBOX_RELAY_INTERVAL": "1", "WEBHOOK_SWEEP_INTERVAL": "0",
    "INVENTORY_CHECK_INTERVAL": "0", "PRICE_SYNC_INTERVAL": "0", "FX_RATE_INTERVAL": "0", "BEAT_LOCK_TTL": "6",
    "CELERY_VISIBILITY_TIMEOUT": "30",
}


class Deployment:
    """``start()`` every host's processes; ``stop()`` removes them, the namespaces and the data."""

    def __init__(self) -> None:
        self.topo = Topology()
        self.logs = Path(tempfile.mkdtemp(prefix="rakuda-netns-"))
        self.at: dict[str, ThreadPoolExecutor] = {}
        self.pg: PostgresHost | None = None

    def url(self, role: str) -> str:
        return f"http://{self.topo.addresses[role]}:5000"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.topo.addresses['db']}:6379/0"

    def start(self) -> Deployment:
        self.topo.create(["db", "gw1", "gw2", "worker", "client"])
        self.at = {role: ThreadPoolExecutor(max_workers=4, initializer=enter_netns, initargs=(ns,))
                   for role, ns in self.topo.hosts.items()}
        redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.topo.spawn("db", [redis_server, "--bind", self.topo.addresses["db"], "--port", "6379",
                               "--protected-mode", "no", "--save", "", "--appendonly", "no",
                               "--dir", str(self.logs)], str(self.logs / "redis.log"))
        self.pg = PostgresHost(self.topo, "db")
        self.pg.start(str(self.logs / "postgres.log"), from_role="worker")
        env = {**COMMON_ENV, "REDIS_URL": self.redis_url, "DATABASE_URL": self.pg.url}
        rakuda = str(Path(sys.executable).parent / "rakuda")
        subprocess.run(["ip", "netns", "exec", self.topo.hosts["worker"], rakuda, "db", "upgrade"],
                       env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
        for role in ("gw1", "gw2"):
            self.topo.spawn(role, procfile_command("web"), str(self.logs / f"{role}.log"), cwd=ROOT,
                            env={**env, **GATEWAY_ENV, "HOST": self.topo.addresses[role]})
        worker_env = {**env, **WORKER_ENV}
        for process in ("worker", "beat"):
            self.topo.spawn("worker", procfile_command(process, worker_env), str(self.logs / f"{process}.log"),
                            cwd=self.logs, env=worker_env)
        for role in ("gw1", "gw2"):
            self.from_host("client", wait_healthy, self.url(role))
        eventually(lambda: " ready." in self.log("worker"), timeout=60, what="the Celery worker ready")
        return self

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tails(self, chars: int = 2000) -> str:
        """The end of every process's log, to explain a failure."""
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}"
                         for path in sorted(self.logs.glob("*.log")))

    def from_host(self, role: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.at[role].submit(fn, *args, **kwargs).result(timeout=120)

    def post_order(self, gateway: str, order_id: str) -> None:
        """A marketplace on the client host delivers a signed new order to ``gateway``'s webhook."""
        raw = json.dumps({"event": "order.created", "order": {
            "id": order_id, "status": "pending", "total": "42.00", "currency": "USD"}}).encode()
        headers = {"Content-Type": "application/json", "X-Joom-Signature": sign_joom(JOOM_SECRET, raw)}
        response = self.from_host("client", requests.post, self.url(gateway) + "/api/webhooks/joom",
                                  data=raw, headers=headers, timeout=10)
        assert response.status_code == 202, f"{response.status_code}: {response.text[:200]}"

    def get(self, role: str, from_role: str, path: str, timeout: float = 10) -> dict[str, Any]:
        return self.from_host(from_role, lambda: requests.get(self.url(role) + path, headers=KEY,
                                                              timeout=timeout).json())

    def sql(self, query: str, from_role: str = "client") -> list[tuple[Any, ...]]:
        """Rows of ``query`` on the db host's PostgreSQL (an operator's connection from ``from_role``)."""
        assert self.pg is not None

        def run() -> list[tuple[Any, ...]]:
            with psycopg2.connect(self.pg.url, connect_timeout=5) as conn, conn.cursor() as cursor:
                cursor.execute(query)
                return cursor.fetchall() if cursor.description else []

        return self.from_host(from_role, run)

    def stop(self) -> None:
        try:
            for pool in self.at.values():
                pool.shutdown(wait=False, cancel_futures=True)
            if self.pg is not None:
                self.pg.stop()
        finally:
            self.topo.destroy()
            shutil.rmtree(self.logs, ignore_errors=True)


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    def healthy() -> bool:
        try:
            return bool(requests.get(url + "/api/health", timeout=1).json().get("redisReachable"))
        except (requests.RequestException, ValueError):
            return False

    eventually(healthy, timeout=timeout, what=f"{url} healthy")
