"""Headers that make the pages and answers safe to serve on the internet.

The dashboard loads only its own scripts and styles (no inline code), so the policy can be
strict: everything from this origin, never framed, no referrer sent along, no MIME sniffing.
``data:`` images are allowed for the icons Swagger UI's stylesheet embeds.
"""

from __future__ import annotations

from flask import Flask, Response

HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _add(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install(app: Flask) -> None:
    app.after_request(_add)
