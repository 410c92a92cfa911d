"""Server-Sent Events framing, pure: text in, bytes out (WHATWG HTML, server-sent events)."""

from __future__ import annotations


def encode(data: str, event: str | None = None, id: str | None = None, retry: int | None = None) -> bytes:
    """One SSE message. Newlines in ``data`` become several ``data:`` lines, as the spec wants."""
    parts = []
    if retry is not None:
        parts.append(f"retry: {int(retry)}\n")
    if id is not None:
        if "\n" in id or "\r" in id or "\0" in id:
            raise ValueError(f"an SSE id cannot contain a newline or NUL: {id!r}")
        parts.append(f"id: {id}\n")
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError(f"an SSE event name cannot contain a newline: {event!r}")
        parts.append(f"event: {event}\n")
    for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode()


def comment(text: str = "") -> bytes:
    return f": {text}\n\n".encode()


def chunk(body: bytes) -> bytes:
    """``body`` as one HTTP/1.1 chunk (the stream is written straight to the socket)."""
    return b"%x\r\n%s\r\n" % (len(body), body)
