"""Celery worker and beat as real processes of their own (so a test can kill one), with their logs kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from shared.config import Settings
from tests import forkserver
from tests.forkserver import ForkedProcess


class CeleryProcess:
    def __init__(self, settings: Settings, *args: str, **env: str) -> None:
        self.env = {**os.environ, **settings.env_items(), **env}
        self.args = [sys.executable, "-m", "celery", "-A", "tasks.worker", *args]
        self.log = tempfile.NamedTemporaryFile(prefix="celery-", suffix=".log", delete=False)
        self.proc: subprocess.Popen | ForkedProcess | None = None

    def start(self) -> CeleryProcess:
        self.proc = forkserver.start(self.args, self.env, self.log.name, "plain")  # tests/forkserver.py
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, as when a machine dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def read_log(self) -> str:
        return Path(self.log.name).read_text(errors="replace")


def worker(settings: Settings, **env: str) -> CeleryProcess:
    return CeleryProcess(settings, "worker", "--pool", "solo", "--loglevel", "INFO", "--without-heartbeat",
                         "--without-gossip", "--without-mingle", **env)


def beat(settings: Settings, **env: str) -> CeleryProcess:
    return CeleryProcess(settings, "beat", "--scheduler", "tasks.beat:SingleBeatScheduler", "--loglevel", "INFO",
                         **env)
