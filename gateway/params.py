"""Integers from URLs: ASCII digits only, and small enough for a BIGINT column.

``str.isdigit()`` and ``int()`` accept far more than a URL should carry ("²", "٣", "+5", " 5",
"1_000"), and PostgreSQL refuses integers past 2^63-1; both would end in a 500.
"""

from __future__ import annotations

import re

MAX_INT = 2**63 - 1
MAX_ROW_ID = 2**31 - 1  # the tables' INTEGER primary keys
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def ascii_int(raw: str, maximum: int = MAX_INT) -> int | None:
    """``raw`` as a non-negative integer up to ``maximum`` (2^63-1), or None when it is anything else."""
    if not _ASCII_DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= maximum else None
