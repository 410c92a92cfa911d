"""Typed fields read from parsed JSON by dotted path (``order.total``); errors name the path.

Pure functions: the webhook payload readers (:mod:`shared.webhook_payloads`) are built from them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# NUMERIC(12, 2) holds amounts below 10^10; a larger one is refused here, not by the database.
MAX_AMOUNT = Decimal("9999999999.99")
MAX_ID = 128  # the length of the id columns


class PayloadError(ValueError):
    """A notification lacks a field or has one of the wrong kind; ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def value_at(obj: Any, path: str, required: bool = True) -> Any:
    value = obj
    walked = []
    for part in path.split("."):
        walked.append(part)
        if not isinstance(value, dict):
            raise PayloadError(".".join(walked[:-1]) or "body", "must be a JSON object")
        value = value.get(part)
        if value is None:
            if required:
                raise PayloadError(path, "is required")
            return None
    return value


def text_at(obj: Any, path: str, required: bool = True, max_length: int = MAX_ID) -> str | None:
    value = value_at(obj, path, required)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise PayloadError(path, f"must be a non-empty string, got {short(value)}")
    if len(str(value)) > max_length:
        raise PayloadError(path, f"must be at most {max_length} characters, got {len(str(value))}")
    return str(value)


def optional_text_at(obj: Any, path: str, max_length: int) -> str:
    """A free-text field that may be absent or empty (a buyer's name, a line's title)."""
    value = value_at(obj, path, required=False)
    if value is None or value == "":
        return ""
    return text_at(obj, path, max_length=max_length) or ""


def object_at(obj: Any, path: str) -> dict[str, Any]:
    """An optional nested object: absent is {}, anything but an object is refused."""
    value = value_at(obj, path, required=False)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(path, f"must be a JSON object, got {short(value)}")
    return value


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in parsed JSON (iterative: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def money_at(obj: Any, path: str, required: bool = True) -> Decimal | None:
    value = value_at(obj, path, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PayloadError(path, f"must be an amount, got {short(value)}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PayloadError(path, f"must be an amount, got {short(value)}") from None
    if not amount.is_finite() or amount < 0:
        raise PayloadError(path, f"must be a non-negative amount, got {short(value)}")
    if amount > MAX_AMOUNT:
        raise PayloadError(path, f"must be at most {MAX_AMOUNT}, got {short(value)}")
    return amount.quantize(Decimal("0.01"))


def time_at(obj: Any, path: str) -> datetime | None:
    value = value_at(obj, path, required=False)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(path, f"must be an ISO 8601 time, got {value!r}") from None


def currency_at(obj: Any, path: str, required: bool = True) -> str | None:
    value = text_at(obj, path, required)
    if value is not None and (len(value) != 3 or not value.isalpha()):
        raise PayloadError(path, f"must be a 3-letter currency code, got {value!r}")
    return value.upper() if value else None
