"""Redis stream ids (``<ms>-<seq>``) as the stream's cursor: parse, compare, step back."""

from __future__ import annotations

import re

StreamId = tuple[int, int]

_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_MAX_SEQ = 2**64 - 1
ZERO: StreamId = (0, 0)


def parse(text: str) -> StreamId:
    """``"1700000000000-3"`` → (1700000000000, 3); ValueError for anything else."""
    match = _ID.match(text.strip())
    if not match:
        raise ValueError(f"not a stream id: {text!r}")
    ms, seq = int(match.group(1)), int(match.group(2))
    if ms > _MAX_SEQ or seq > _MAX_SEQ:
        raise ValueError(f"not a stream id: {text!r}")
    return ms, seq


def format(sid: StreamId) -> str:  # noqa: A001 - mirrors parse
    return f"{sid[0]}-{sid[1]}"


def predecessor(sid: StreamId) -> StreamId:
    """The greatest id below ``sid`` (everything up to it came strictly before ``sid``)."""
    ms, seq = sid
    if seq > 0:
        return ms, seq - 1
    if ms > 0:
        return ms - 1, _MAX_SEQ
    return ZERO


def format_cursor(epoch: str, sid: StreamId) -> str:
    """The SSE ``id:``: the history's epoch and a position in it, ``<epoch>:<ms>-<seq>``."""
    return f"{epoch}:{sid[0]}-{sid[1]}"


def parse_cursor(text: str) -> tuple[str, StreamId]:
    """``"3f2a9c1b:1700000000000-3"`` → ("3f2a9c1b", (1700000000000, 3)); ValueError otherwise."""
    epoch, sep, position = text.strip().partition(":")
    if not sep or not epoch or not epoch.isalnum():
        raise ValueError(f"not a stream cursor: {text!r}")
    return epoch, parse(position)
