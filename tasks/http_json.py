"""JSON over HTTP with a hard timeout; failures sorted into transient (retry) and permanent."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tasks.errors import PermanentError, TransientError


class HttpJson:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, decoded JSON or None). 404 is returned, not raised, so callers can give it a meaning.

        Timeouts, refused connections, 5xx and 429 raise TransientError; other 4xx PermanentError
        with the server's ``error`` text.
        """
        url = self.base_url + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            payload = _decode(exc.read())
            exc.close()
            reason = payload.get("error") if isinstance(payload, dict) else None
            message = f"{method} {url}: HTTP {exc.code}" + (f": {reason}" if reason else "")
            if exc.code == 404:
                return 404, payload
            if exc.code == 429 or exc.code >= 500:
                raise TransientError(message) from None
            raise PermanentError(message) from None
        except TimeoutError as exc:
            raise TransientError(f"{method} {url}: no answer within {self.timeout}s") from exc
        except urllib.error.URLError as exc:
            raise TransientError(f"{method} {url}: {exc.reason}") from exc
        except (ConnectionError, OSError) as exc:
            raise TransientError(f"{method} {url}: {exc}") from exc


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
