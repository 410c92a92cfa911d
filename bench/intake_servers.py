"""The intake servers: three under the gateway's gunicorn config with one worker, and the sender's check.

``gateway``: the Procfile's ``web`` line (``gateway.app:create_app()``), on the bench's schema,
with both marketplace secrets set. ``ceiling``: ``bench.intake_ceiling`` (Flask + one psycopg2
INSERT). ``floor``: ``bench.intake_floor`` (Flask answering 202, no work). All three get
``WEB_CONCURRENCY=1`` and the same access-log and log-level settings. ``echo``:
``bench.intake_echo``, a bare asyncio responder with no gunicorn, against which the sender's own
ceiling is measured.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench import procstat
from bench.systems import ROOT, wait_healthy

JOOM_SECRET = "bench-joom-secret"
EBAY_SECRET = "bench-ebay-secret"
APPS = {"gateway": ("gateway.app:create_app()", "/api/health"),
        "ceiling": ("bench.intake_ceiling:create_app()", "/health"),
        "floor": ("bench.intake_floor:create_app()", "/health"),
        "echo": ("bench.intake_echo", "")}


def port_in_range(first: int, last: int) -> int:
    """A port in [first, last] nobody listens on now."""
    for port in range(first, last + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} (exit status {proc.poll()})")


class IntakeServer:
    def __init__(self, name: str, port: int, env: dict[str, str]) -> None:
        self.name, self.port = name, port
        self.app, self.health_path = APPS[name]
        self.env = {**os.environ, "DATABASE_URL": "", **env, "PORT": str(port), "WEB_CONCURRENCY": "1",
                    "JOOM_WEBHOOK_SECRET": JOOM_SECRET, "EBAY_WEBHOOK_SECRET": EBAY_SECRET,
                    "API_KEYS": "bench-key", "SECRET_KEY": "bench-secret-key-0123456789abcdef",
                    "ACCESS_LOG": "/dev/null", "LOG_LEVEL": "warning"}
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-intake-{name}-", suffix=".log", delete=False)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> IntakeServer:
        command = [sys.executable, "-m", "gunicorn", "-c", "gateway/gunicorn_conf.py", self.app]
        if self.name == "echo":
            command = [sys.executable, "-m", self.app, str(self.port)]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if self.name == "echo":
            wait_listening(self.port, self.proc)
        else:
            wait_healthy(f"http://127.0.0.1:{self.port}{self.health_path}", self.proc)
        return self

    @property
    def worker_pid(self) -> int:
        assert self.proc is not None
        if self.name == "echo":
            return self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = procstat.children(self.proc.pid)
            if children:
                return children[0]
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn {self.proc.pid} has no worker")

    def cpu_s(self) -> float:
        return procstat.cpu_seconds(self.worker_pid)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: this gunicorn only
                self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy ``pid`` (raw collapsed stacks to ``out``) while the body runs; nothing when ``out`` is None."""
    spy = Path(sys.executable).with_name("py-spy")
    if out is None or not spy.exists():
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([str(spy), "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
                             "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
