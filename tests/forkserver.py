"""Gateways for tests, forked from a process that has already imported the gateway's libraries.

A gateway started as the Procfile says (``python -m gunicorn ...``) spends about 1.5 CPU seconds
before it answers: gevent's monkey-patching, then importing Flask, SQLAlchemy, Celery, pydantic,
redis and gunicorn, in the master and again in its worker. The suite starts more than a hundred
gateways on two cores, so that was a third of its CPU time.

The fork server is one process per test process that has done that work once: it patches with
gevent (as the worker does first) and imports every library the gateway's modules import, but
none of the gateway's own modules. For each gateway it forks a child that takes the test's
environment, working directory and log file and runs ``python -m <module> <args>`` in place,
exactly the Procfile's command line. The child imports the gateway's modules itself, so every
module-level object (the workers' shared load table, metric registrations, settings) is made
fresh in each gateway, as in a process of its own. What differs from production is that the
gunicorn master runs gevent-patched, as it does with ``monkey.patch_all()`` in a gunicorn config.

Tests that are about process start-up itself (a reload while the new workers import) start the
real command line: ``GatewayServer(..., forked=False)``. ``RAKUDA_TEST_FORK_GATEWAYS=0`` starts
every gateway that way.

Protocol: one JSON object per line on the server's stdin, one answer per line on its stdout.
``{"spawn": {...}}`` answers ``{"pid": N}``; ``{"poll": N}`` answers ``{"returncode": code | null}``.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("gateway", "shared", "tasks", "tests", "bench")
# Always wanted in the child: the parts of gunicorn the master and the gevent worker load by name.
ALWAYS = ("gunicorn.app.wsgiapp", "gunicorn.arbiter", "gunicorn.workers.ggevent", "gunicorn.glogging")


def enabled() -> bool:
    return os.environ.get("RAKUDA_TEST_FORK_GATEWAYS", "1") != "0"


# --- the server side: runs as ``python -m tests.forkserver`` -------------------------------------


def libraries_the_gateway_imports() -> list[str]:
    """Every module named in an import statement of ``gateway/`` or ``shared/`` that is not the project's."""
    names: set[str] = set(ALWAYS)
    for package in ("gateway", "shared"):
        for path in sorted((ROOT / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] not in PROJECT_PACKAGES)


def _preload() -> None:
    import importlib

    for name in libraries_the_gateway_imports():
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional dependency: the child imports or skips it as the gateway would


def _run_child(request: dict[str, Any], pipes: tuple[int, ...]) -> None:
    """In the forked child: become ``python -m module args`` with the request's environment."""
    import runpy

    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)  # in place of the request pipe
    os.dup2(log, 1)  # in place of the answer pipe
    os.dup2(log, 2)
    for fd in {null, log, *pipes} - {0, 1, 2}:
        os.close(fd)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = request["cwd"]
    module, *args = request["argv"]
    sys.argv = [module, *args]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    from gevent import monkey

    # The server itself waits and forks with the unpatched calls; it never runs a gevent loop.
    wait_for_child, pick, fork = os.waitpid, __import__("select").select, os.fork
    monkey.patch_all()
    _preload()
    requests_in, answers_out = sys.stdin.fileno(), sys.stdout.fileno()
    exited: dict[int, int] = {}
    reader = os.fdopen(os.dup(requests_in), "r")

    def reap() -> None:
        while True:
            try:
                pid, status = wait_for_child(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            exited[pid] = os.waitstatus_to_exitcode(status)

    def answer(message: dict[str, Any]) -> None:
        os.write(answers_out, (json.dumps(message) + "\n").encode())

    answer({"ready": True})
    while True:
        ready, _, _ = pick([requests_in], [], [], 0.5)
        reap()
        if not ready:
            continue
        line = reader.readline()
        if not line:
            return  # the test process has gone: its gateways were stopped by its fixtures
        request = json.loads(line)
        if "spawn" in request:
            pid = fork()
            if pid == 0:
                _run_child(request["spawn"], (requests_in, answers_out, reader.fileno()))
            answer({"pid": pid})
        elif "poll" in request:
            answer({"returncode": exited.get(request["poll"])})


# --- the test side ------------------------------------------------------------------------------


class ForkedProcess:
    """What tests use of ``subprocess.Popen`` for a process the fork server started."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.returncode(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"process {self.pid}", timeout or 0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The fork server of this test process, started on first use."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        self.lock = threading.Lock()
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError("the gateway fork server exited while importing")

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self.lock:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the gateway fork server has exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path, log: str) -> ForkedProcess:
        """``python -m argv[0] argv[1:]`` (argv without the interpreter) in a child of the fork server."""
        pid = self._ask({"spawn": {"argv": argv, "env": env, "cwd": str(cwd), "log": log}})["pid"]
        return ForkedProcess(self, int(pid))

    def close(self) -> None:
        """Ends the fork server (its gateways are the fixtures' to stop)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def returncode(self, pid: int) -> int | None:
        code = self._ask({"poll": pid})["returncode"]
        return None if code is None else int(code)


_server: ForkServer | None = None
_server_pid = 0


def fork_server() -> ForkServer:
    """This process's fork server (a new one in a forked process: the parent's pipe is not its own)."""
    global _server, _server_pid
    if _server is None or _server_pid != os.getpid() or _server.proc.poll() is not None:
        _server, _server_pid = ForkServer(), os.getpid()
        atexit.register(_server.close)
    return _server


if __name__ == "__main__":
    serve()
