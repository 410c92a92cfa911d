"""A private Redis primary, one replica and three sentinels, on free loopback ports."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.servers import free_port, wait_for_port
from tests.waiting import eventually

MASTER_NAME = "rakuda-test"


class RedisHA:
    def __init__(self, down_after_ms: int = 1000) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rakuda-sentinel-"))
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.down_after_ms = down_after_ms
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def _server(self, port: int, *extra: str) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        data = self.dir / str(port)
        data.mkdir(exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(data), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, proc=self.procs[port])

    def start(self) -> RedisHA:
        self._server(self.primary_port)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n")
            binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
            self.procs[port] = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
            wait_for_port(port, proc=self.procs[port])
        self.wait_until(lambda: self.client(self.replica_port).info("replication").get("master_link_status") == "up",
                        "replica in sync")
        self.wait_until(lambda: all(self._sees_replica(p) for p in self.sentinel_ports), "sentinels see the replica")
        return self

    def _sees_replica(self, port: int) -> bool:
        try:
            return bool(self.client(port).sentinel_slaves(MASTER_NAME))
        except redis.RedisError:
            return False

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)

    def master_port(self) -> int:
        for port in self.sentinel_ports:
            try:
                host, master = self.client(port).sentinel_get_master_addr_by_name(MASTER_NAME)
                return int(master)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def pause(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGCONT)

    def wait_for_failover(self, timeout: float = 30.0) -> float:
        """Seconds until the sentinels name the replica as primary and it accepts writes."""
        started = time.time()
        self.wait_until(lambda: self.master_port() == self.replica_port, "failover to the replica", timeout)
        self.wait_until(lambda: self.client(self.replica_port).info("replication")["role"] == "master",
                        "replica promoted", timeout)
        return time.time() - started

    @staticmethod
    def wait_until(predicate, what: str, timeout: float = 30.0) -> None:
        """``predicate`` polled by ``eventually``; a Redis error (a server mid-failover) counts as not yet."""

        def holds() -> object:
            try:
                return predicate()
            except redis.RedisError:
                return False

        eventually(holds, timeout=timeout, what=what)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
