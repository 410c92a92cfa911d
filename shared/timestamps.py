"""UTC time as text, in one format: ISO 8601 ending in ``Z`` (``2026-11-28T10:00:00.123Z``), and UTC days."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Precision = Literal["seconds", "milliseconds"]


def utc_iso(when: datetime | float | None = None, precision: Precision = "milliseconds") -> str:
    """``when`` (a datetime, a Unix time, or now) in UTC as ISO 8601 with a ``Z``.

    A datetime without an offset is taken to be UTC already (SQLite keeps none; every time
    stored is UTC).
    """
    if when is None:
        moment = datetime.now(UTC)
    elif isinstance(when, datetime):
        moment = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    else:
        moment = datetime.fromtimestamp(when, UTC)
    return moment.isoformat(timespec=precision).replace("+00:00", "Z")


def utc_day(when: datetime | None = None) -> str:
    """The UTC date of ``when`` (now by default) as ``YYYY-MM-DD``: the per-day stats' key suffix."""
    moment = datetime.now(UTC) if when is None else when
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d")
