"""JSON error responses: what was wrong, in a body a client can read."""

from __future__ import annotations

from flask import Response, jsonify


class HttpError(Exception):
    """Raised by views and checks; rendered as ``{"error": message, "status": code}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: object):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def render(exc: HttpError) -> Response:
    response = jsonify({"error": exc.message, "status": exc.status, **exc.extra})
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response
