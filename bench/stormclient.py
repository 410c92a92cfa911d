"""The storm's load client: dashboards (``bench.stormworker``) spread over processes, driven over pipes.

One process may hold at most ~20,000 sockets here; each dashboard is bound to one of eight
loopback source addresses, so that reconnects are not limited by the ephemeral ports of one
address towards the gateway's one port.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.loadworker import raise_nofile
from bench.stormworker import worker_main
from bench.systems import API_KEY


def stack_of(pid: int | None) -> str:
    """What a process is doing (py-spy dump), for the error when it does not answer."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        return subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"(py-spy dump failed: {exc})"


CHANNEL_SETS = ("inventory,orders,pricing,listings", "inventory,pricing")
SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]


class StormClient:
    """Dashboards spread over processes (one process may hold at most ~20,000 sockets)."""

    def __init__(self, processes: int) -> None:
        raise_nofile()
        ctx = multiprocessing.get_context("spawn")
        self.pipes, self.procs = [], []
        for _ in range(processes):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(theirs,), daemon=True)
            proc.start()
            self.pipes.append(ours)
            self.procs.append(proc)

    def ask(self, name: str, args: Any = None, timeout: float = 60.0) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((name, args))
        answers = []
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            if not pipe.poll(timeout):
                raise TimeoutError(f"storm client process {proc.pid} (alive: {proc.is_alive()}) did not answer "
                                   f"{name!r} within {timeout:g}s; its stack:\n{stack_of(proc.pid)}")
            answers.append(pipe.recv())
        return answers

    def open(self, port: int, path: str, n: int, spread_s: float, lazy: float) -> None:
        specs: list[list[tuple[str, str]]] = [[] for _ in self.pipes]
        for i in range(n):
            specs[i % len(self.pipes)].append((SOURCES[i % len(SOURCES)], CHANNEL_SETS[i % len(CHANNEL_SETS)]))
        for pipe, mine in zip(self.pipes, specs, strict=True):
            pipe.send(("open", ("127.0.0.1", port, path, {"X-API-Key": API_KEY}, mine, spread_s, lazy)))
        for pipe in self.pipes:
            pipe.recv()

    def progress(self) -> dict[str, Any]:
        total: dict[str, Any] = {"statuses": Counter(), "last_back": None}
        for answer in self.ask("progress"):
            for key, value in answer.items():
                if key == "statuses":
                    total["statuses"].update(value)
                elif key == "last_back":
                    if value is not None:
                        total["last_back"] = max(total["last_back"] or value, value)
                else:
                    total[key] = total.get(key, 0) + value
        return total

    def check(self, published: list[tuple[str, str]]) -> dict[str, int]:
        total: Counter[str] = Counter()
        worst = 0
        for answer in self.ask("check", published, timeout=300):
            worst = max(worst, answer.pop("worst_lost"))
            total.update(answer)
        return {**total, "worst_lost": worst}

    def stop(self) -> None:
        with contextlib.suppress(TimeoutError, OSError, EOFError):
            self.ask("exit", timeout=20)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
