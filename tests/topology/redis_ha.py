"""A private Redis primary, one replica and three sentinels, on free loopback ports."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.servers import free_ports, wait_for_port
from tests.waiting import eventually

MASTER_NAME = "rakuda-test"


class PortTaken(Exception):
    """Another process listens on a port chosen for this cluster (it took it between choice and bind)."""


class RedisHA:
    def __init__(self, down_after_ms: int = 1000) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rakuda-sentinel-"))
        self.down_after_ms = down_after_ms
        self.procs: dict[int, subprocess.Popen] = {}
        self._choose_ports()

    def _choose_ports(self) -> None:
        self.primary_port, self.replica_port, *self.sentinel_ports = free_ports(5)

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def _server(self, port: int, *extra: str) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        data = self.dir / str(port)
        data.mkdir(exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(data), "--logfile", str(self.dir / f"{port}.log"), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_for_own(port)

    def _wait_for_own(self, port: int) -> None:
        """Until ``port`` answers, and it is this cluster's process that answers there."""
        proc = self.procs[port]
        try:
            wait_for_port(port, proc=proc)
        except RuntimeError as exc:  # it exited: most likely the port was taken before it could bind
            raise PortTaken(f"{exc}; log: {self.log_tail(port)}") from None
        once = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, retry=Retry(NoBackoff(), 0))
        try:
            pid = once.info("server").get("process_id")
        except redis.RedisError as exc:
            raise PortTaken(f"{port} answers, but not as Redis: {exc}") from None
        finally:
            once.close()
        if pid != proc.pid:
            raise PortTaken(f"{port} is served by pid {pid}, not by ours ({proc.pid})")

    def log_tail(self, port: int, lines: int = 15) -> str:
        path = self.dir / f"{port}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def start(self) -> RedisHA:
        """Start the five servers; if another process takes one of their ports first, again on new ports.

        A start that fails stops what it started (a fixture whose setup fails is not torn down).
        """
        try:
            for _ in range(2):
                try:
                    return self._start()
                except PortTaken:
                    self._kill_all()
                    self._choose_ports()
            return self._start()  # a third time, and whatever fails now is the answer
        except BaseException:
            self.stop()
            raise

    def _start(self) -> RedisHA:
        self._server(self.primary_port, "--repl-diskless-sync-delay", "0")  # the replica syncs at once, not after 5 s
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
                f"logfile {self.dir / f'{port}.log'}\n")
            binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
            self.procs[port] = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
            self._wait_for_own(port)
        try:
            self.wait_until(lambda: self.client(self.replica_port).info("replication").get("master_link_status")
                            == "up", "replica in sync")
            self.wait_until(lambda: all(self._sees_replica(p) for p in self.sentinel_ports),
                            "sentinels see the replica")
        except AssertionError as exc:
            logs = "\n".join(f"--- {port}:\n{self.log_tail(port)}" for port in self.procs)
            raise AssertionError(f"{exc}\n{logs}") from None
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

    def _kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        self.procs.clear()

    def stop(self) -> None:
        self._kill_all()
        shutil.rmtree(self.dir, ignore_errors=True)
