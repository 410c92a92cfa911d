"""Log lines as text (the default, for people) or one JSON object per line (``LOG_FORMAT=json``).

A JSON line always has ``time``, ``level``, ``logger`` and ``message``; gateway lines written
while a request is served also have ``request_id`` (see ``gateway.request_ids``). The formatter
is python-json-logger's; this module only chooses the fields and installs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from shared.timestamps import utc_iso

LOG_FORMATS = ("text", "json")
# The id of the request being served (gevent gives each greenlet its own context).
request_id_var: ContextVar[str | None] = ContextVar("rakuda_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RakudaJsonFormatter(JsonFormatter):
    """``time``, ``level``, ``logger``, ``message`` (+ ``request_id`` and any ``extra=``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", False)
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return utc_iso(record.created)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to records written while a request is served (gateway and gunicorn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None):
            return True
        request_id = request_id_var.get()
        if request_id is None and isinstance(record.args, dict):  # gunicorn's access log atoms
            request_id = record.args.get("{x-request-id}o") or None
        if request_id is not None:
            record.request_id = request_id
        return True


def formatter_for(log_format: str) -> logging.Formatter:
    return RakudaJsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def use_format(log_format: str, handlers: Iterable[logging.Handler]) -> None:
    """Give each handler the formatter of ``log_format`` (``text`` or ``json``)."""
    for handler in handlers:
        handler.setFormatter(formatter_for(log_format))
        handler.addFilter(RequestIdFilter())


def gunicorn_logconfig(level: str, access_log: str | None = "-") -> dict[str, Any]:
    """gunicorn's ``logconfig_dict`` for JSON lines: its own logs, the access log and the app's.

    ``access_log`` is gunicorn's ``accesslog``: ``-`` for standard output, a file's path, or None
    for no access log (the ``gunicorn.access`` logger then has no handler and does not propagate).
    """
    handler = {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}
    handlers: dict[str, Any] = {"stderr": {**handler, "stream": "ext://sys.stderr"},
                                "stdout": {**handler, "stream": "ext://sys.stdout"}}
    access_handlers: list[str] = []
    if access_log == "-":
        access_handlers = ["stdout"]
    elif access_log is not None:
        handlers["access_file"] = {"class": "logging.handlers.WatchedFileHandler", "filename": access_log,
                                   "formatter": "json", "filters": ["request_id"]}
        access_handlers = ["access_file"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "shared.logs.RakudaJsonFormatter"}},
        "filters": {"request_id": {"()": "shared.logs.RequestIdFilter"}},
        "handlers": handlers,
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": access_handlers, "propagate": False},
        },
    }


def configure_logging(log_format: str, level: str = "INFO") -> None:
    """The root logger writes to stderr in ``log_format``; handlers that were there are replaced."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
