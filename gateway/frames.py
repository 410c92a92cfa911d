"""What goes on the wire for a client: one framing function and one cache of framed messages.

Clients differ in two things only: the set of event types they follow (a message's ``id:``
depends on it) and whether their socket takes HTTP/1.1 chunks. That pair is a client's
``FrameKey``; a message is encoded once per set of types and framed once per key.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway import sse

FrameKey = tuple[frozenset[str], bool]  # (the client's event types, chunked?)


def frame(raw: bytes, chunked: bool) -> bytes:
    """``raw`` as written to a client's socket: one HTTP/1.1 chunk, or as it is (HTTP/1.0)."""
    return sse.chunk(raw) if chunked else raw


class FrameCache:
    """One message's framed bytes per frame key, each encoding built once per set of types."""

    __slots__ = ("_build", "_framed", "_raw")

    def __init__(self, build: Callable[[frozenset[str]], bytes]) -> None:
        self._build = build  # types -> the message's bytes (its id depends on the types)
        self._raw: dict[frozenset[str], bytes] = {}
        self._framed: dict[FrameKey, bytes] = {}

    def for_key(self, key: FrameKey) -> bytes:
        framed = self._framed.get(key)
        if framed is None:
            types, chunked = key
            raw = self._raw.get(types)
            if raw is None:
                raw = self._raw[types] = self._build(types)
            framed = self._framed[key] = frame(raw, chunked)
        return framed
