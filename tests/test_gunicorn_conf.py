"""gateway/gunicorn_conf.py reads its environment as documented in .env.example."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


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
