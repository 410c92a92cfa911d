"""Fixtures for the notifier: receivers, settings pointing at them, a notifier process."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from tests import forkserver
from tests.notify.receivers import Receiver
from tests.servers import procfile_command

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"a-test-secret-of-32-bytes-length!").decode()


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {name: Receiver().start() for name in ("discord", "line", "webhook")}
    yield made
    for r in made.values():
        r.stop()


def notify_env(redis_url: str, receivers: dict[str, Receiver], **extra: str) -> dict[str, str]:
    env = {
        "REDIS_URL": redis_url,
        "NOTIFY_DISCORD_WEBHOOK_URL": receivers["discord"].url + "/api/webhooks/1/tok",
        "NOTIFY_LINE_CHANNEL_TOKEN": "line-token",
        "NOTIFY_LINE_TO": "U0123",
        "LINE_API_URL": receivers["line"].url,
        "NOTIFY_WEBHOOK_URL": receivers["webhook"].url + "/hook",
        "NOTIFY_WEBHOOK_SECRET": SECRET,
        "NOTIFY_BATCH_WINDOW": "1",
        "NOTIFY_BACKOFF": "0.05",
        "NOTIFY_BACKOFF_MAX": "0.2",
        "NOTIFY_MAX_ATTEMPTS": "3",
        "NOTIFY_TIMEOUT": "3",
        "CONSUMER_CLAIM_AFTER": "2",
        "NOTIFY_DASHBOARD_URL": "http://dash.example",
    }
    env.update(extra)
    return env


def notify_settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


class NotifierProcess:
    """The Procfile's ``notifier`` line, run as a process of its own."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.env.pop("CI", None)
        self.proc: subprocess.Popen[bytes] | forkserver.ForkedProcess | None = None
        fd, self.log_path = tempfile.mkstemp(prefix="notifier-", suffix=".log")
        os.close(fd)

    def start(self) -> NotifierProcess:
        argv = procfile_command("notifier")
        assert argv[2:] == ["rakuda", "notify", "run"]
        self.proc = forkserver.start([sys.executable, "-m", "tasks.cli", "notify", "run"], self.env, self.log_path,
                                     "plain")  # tests/forkserver.py
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")


@pytest.fixture
def notifier_processes() -> Iterator[list[NotifierProcess]]:
    started: list[NotifierProcess] = []
    yield started
    for p in started:
        p.stop()
        os.unlink(p.log_path)
