"""A request id on every gateway log line of a request, and on its answer (``X-Request-ID``).

An id sent by a proxy in ``X-Request-ID`` is kept when it is short and plain (so one id follows
a request through nginx and the gateway); anything else is replaced by a new one, so a client
cannot write arbitrary text into our logs.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from shared.logs import request_id_var

HEADER = "X-Request-ID"
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _assign() -> None:
    offered = request.headers.get(HEADER, "")
    g.request_id = offered if _PLAIN_ID.fullmatch(offered) else uuid.uuid4().hex
    request_id_var.set(g.request_id)


def _answer(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[HEADER] = request_id
    return response


def install(app: Flask) -> None:
    app.before_request(_assign)
    app.after_request(_answer)
