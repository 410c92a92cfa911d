"""Redis replies in the shapes this project reads them, typed at the boundary.

redis-py types every command's reply as ``Any | Awaitable[Any]`` and gives bytes or str
depending on ``decode_responses``. The functions here turn the few reply shapes we use into
plain ``str`` values, so the code that reads them is checked like the rest.
"""

from __future__ import annotations

from typing import Any, cast

Fields = dict[str, str]
StreamEntry = tuple[str, Fields]


def text(value: object) -> str:
    """A bytes or str reply element as str."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected bytes or str from Redis, got {type(value).__name__}")


def fields(raw: object) -> Fields:
    """A hash or a stream entry's fields (``{b"k": b"v"}``) as ``{"k": "v"}``; None → {}."""
    if raw is None:
        return {}
    return {text(k): text(v) for k, v in cast(dict[Any, Any], raw).items()}


def stream_entries(raw: object) -> list[StreamEntry]:
    """An XRANGE / XREVRANGE reply (``[(id, fields), ...]``) as ``[("1-0", {"t": ...}), ...]``."""
    return [(text(entry_id), fields(entry_fields)) for entry_id, entry_fields in cast(list[Any], raw or [])]


def scored_members(raw: object) -> list[tuple[str, float]]:
    """A ZRANGE… WITHSCORES reply as ``[(member, score), ...]``."""
    return [(text(member), float(score)) for member, score in cast(list[Any], raw or [])]
