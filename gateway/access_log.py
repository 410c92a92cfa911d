"""gunicorn's logger with control characters escaped in every access-log field.

A path is URL-decoded before it is logged, so ``/x%0A127.0.0.9 "GET /api/admin…`` would write a
forged second line; escaped, it stays one line and reads ``/x\\x0a127.0.0.9 …``.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")


def escape(text: str) -> str:
    """Control characters (and the backslash, so an escape cannot be forged) as ``\\xNN``."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class EscapingLogger(Logger):  # type: ignore[misc]
    """Escapes every access-log field; formats no access line at all when ``accesslog`` is off.

    gunicorn formats each request's line whenever ``accesslog`` is set *or* a ``logconfig_dict``
    is (LOG_FORMAT=json), even if no handler then writes it: with no ``accesslog`` there is
    nothing to format.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        return {name: escape(value) if isinstance(value, str) else value
                for name, value in super().atoms(resp, req, environ, request_time).items()}
