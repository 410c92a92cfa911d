"""gateway/gunicorn_conf.py reads its environment as documented in .env.example."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def conf_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import gateway.gunicorn_conf as conf

    return importlib.reload(conf)


def test_access_log_off_or_dev_null_is_no_access_log_at_all(monkeypatch):
    # gunicorn formats every access line even for /dev/null: "off" must not get a logger at all.
    assert conf_with(monkeypatch, ACCESS_LOG="off").accesslog is None
    assert conf_with(monkeypatch, ACCESS_LOG="/dev/null").accesslog is None
    assert conf_with(monkeypatch, ACCESS_LOG="-").accesslog == "-"
    assert conf_with(monkeypatch, ACCESS_LOG="/var/log/rakuda/access.log").accesslog == "/var/log/rakuda/access.log"


def test_the_accept_queue_is_as_deep_as_the_kernel_allows_unless_set(monkeypatch):
    # A restart's reconnects arrive while the new worker imports: a full queue drops SYNs, which the
    # clients' kernels resend only seconds later. gunicorn's own default is 2048.
    monkeypatch.delenv("WEB_BACKLOG", raising=False)
    with open("/proc/sys/net/core/somaxconn") as limit:
        kernel = int(limit.read())
    assert conf_with(monkeypatch).backlog == max(2048, kernel)
    assert conf_with(monkeypatch, WEB_BACKLOG="512").backlog == 512


FORMATTED_LINES = """
import sys
from gunicorn.config import Config
import gateway.gunicorn_conf as conf
from gateway.access_log import EscapingLogger

cfg = Config()
for name in cfg.settings:
    if hasattr(conf, name):
        cfg.set(name, getattr(conf, name))
formatted = []
EscapingLogger.atoms = lambda self, *args: formatted.append(1) or {"h": "127.0.0.1"}
EscapingLogger(cfg).access(None, None, {}, None)
print(len(formatted), file=sys.stderr)
"""


def access_lines(access_log: str, log_format: str) -> tuple[int, int]:
    """(lines formatted, lines written to stdout) for one request, in a process of its own (the logger
    configures the process's logging)."""
    env = {**os.environ, "ACCESS_LOG": access_log, "LOG_FORMAT": log_format}
    done = subprocess.run([sys.executable, "-c", FORMATTED_LINES], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return int(done.stderr.split()[-1]), len(done.stdout.splitlines())


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_access_line_is_formatted_or_written_when_the_access_log_is_off(log_format):
    # gunicorn formats every line when a logconfig_dict is set (LOG_FORMAT=json), whatever accesslog says.
    def run(access_log: str) -> tuple[int, int]:
        return access_lines(access_log, log_format)

    assert run("off") == (0, 0)
    assert run("/dev/null") == (0, 0)
    assert run("-") == (1, 1)  # the same logger formats and writes when the log is on


def test_json_access_lines_go_to_the_access_log_file(tmp_path):
    path = tmp_path / "access.log"
    assert access_lines(str(path), "json") == (1, 0)
    assert json.loads(path.read_text())["logger"] == "gunicorn.access"
