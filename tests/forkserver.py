"""Gateways, Celery workers and notifiers for tests, forked from a process that has already
imported their libraries.

A gateway started as the Procfile says (``python -m gunicorn ...``) spends about 1.5 CPU seconds
before it answers: gevent's monkey-patching, then importing Flask, SQLAlchemy, Celery, pydantic,
redis and gunicorn, in the master and again in its worker. The suite starts more than a hundred
gateways on two cores, so that was a third of its CPU time.

A fork server is one process per test process that has done that work once: the ``gevent``
one patches with gevent (as the gateway's worker does first) and imports every library that
``gateway/`` and ``shared/`` import; the ``plain`` one, for Celery workers and the notifier, imports
what ``tasks/`` and ``shared/`` import, unpatched. Neither imports the project's own modules. For
each process it forks a child that takes the test's environment, working directory and log file
and runs ``python -m <module> <args>`` in place: the Procfile's command line. The child imports
the project's modules itself, so every module-level object (the gateway workers' shared load
table, metric registrations, settings, the Celery app) is made fresh in each process, as in a
process of its own. What differs from production is that a gateway's gunicorn master runs
gevent-patched, as it does with ``monkey.patch_all()`` in a gunicorn config.

Tests that are about process start-up itself (a reload while the new workers import) start the
real command line: ``GatewayServer(..., forked=False)``. ``RAKUDA_TEST_FORK_GATEWAYS=0`` starts
every process that way.

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


FLAVOURS = {"gevent": ("gateway", "shared"), "plain": ("tasks", "shared")}


def libraries_imported_by(packages: tuple[str, ...]) -> list[str]:
    """Every module named in an import statement of ``packages`` that is not the project's."""
    names: set[str] = set(ALWAYS)
    for package in packages:
        for path in sorted((ROOT / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] not in PROJECT_PACKAGES)


def _preload(packages: tuple[str, ...]) -> None:
    import importlib

    for name in libraries_imported_by(packages):
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


def serve(flavour: str) -> None:
    # The server itself waits and forks with the unpatched calls; it never runs a gevent loop.
    wait_for_child, pick, fork = os.waitpid, __import__("select").select, os.fork
    if flavour == "gevent":
        from gevent import monkey

        monkey.patch_all()
    _preload(FLAVOURS[flavour])
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
            exited.pop(pid, None)  # a pid used again: what an earlier child of that pid left is not this one's
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

    def __init__(self, flavour: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", flavour], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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


_servers: dict[tuple[str, int], ForkServer] = {}


def fork_server(flavour: str = "gevent") -> ForkServer:
    """This process's fork server of ``flavour`` (a forked process gets its own: the pipes are its parent's)."""
    key = (flavour, os.getpid())
    server = _servers.get(key)
    if server is None or server.proc.poll() is not None:
        server = _servers[key] = ForkServer(flavour)
        atexit.register(server.close)
    return server


def start(argv: list[str], env: dict[str, str], log: str,
          flavour: str | None) -> subprocess.Popen[bytes] | ForkedProcess:
    """``argv`` (``[sys.executable, "-m", module, ...]``) from the fork server of ``flavour``, its output
    appended to ``log``; a new interpreter instead for flavour None or when fork servers are turned off."""
    assert argv[:2] == [sys.executable, "-m"], argv
    if flavour is not None and enabled():
        return fork_server(flavour).spawn(argv[2:], env, ROOT, log)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


if __name__ == "__main__":
    serve(sys.argv[1])
