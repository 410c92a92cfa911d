"""``rakuda tail``: follow the gateway's event stream from a terminal.

One line per event (or one JSON object with ``--json``) on stdout; connection news on stderr.
It reconnects by itself and resumes with the last id it saw, so a gateway restart loses nothing.
Exit status: 0 after ``--count`` events, 2 when the key (or a parameter) is refused, 1 when the
gateway cannot be reached after its retries.
"""

from __future__ import annotations

import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlencode

EXIT_DONE, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2


@dataclass
class Message:
    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class SseParser:
    """Turns the stream's lines into messages (the text/event-stream framing, nothing more)."""

    _current: Message = field(default_factory=Message)
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> Message | None:
        line = line.rstrip("\r\n")
        if line == "":
            if not self._data and self._current.event == "message" and self._current.id is None:
                return None
            message, self._current = self._current, Message()
            message.data, self._data = "\n".join(self._data), []
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._current.event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._current.id = value
        return None


class Refused(Exception):
    """The gateway answered 4xx: retrying will not help."""


@dataclass
class Tail:
    url: str
    key: str
    channels: str = ""
    types: frozenset[str] = frozenset()
    count: int | None = None
    as_json: bool = False
    last_event_id: str | None = None
    retries: int = 5
    # Longer than two heartbeats at the default 30 s: a stream silent for this long is dead.
    read_timeout: float = 70.0
    out: IO[str] = sys.stdout
    err: IO[str] = sys.stderr
    printed: int = 0

    def run(self) -> int:
        failures = 0
        while True:
            try:
                for message in self._messages():
                    failures = 0
                    if self._show(message):
                        return EXIT_DONE
                self._say("the gateway closed the stream; reconnecting")
            except Refused as exc:
                self._say(str(exc))
                return EXIT_REFUSED
            except (OSError, urllib.error.URLError) as exc:
                failures += 1
                if failures > self.retries:
                    self._say(f"cannot reach {self.url} after {self.retries} retries: {_reason(exc)}")
                    return EXIT_UNREACHABLE
                delay = min(0.5 * 2 ** (failures - 1), 10.0) * random.uniform(0.5, 1.0)
                self._say(f"connection failed ({_reason(exc)}); retry {failures}/{self.retries} in {delay:.1f}s")
                time.sleep(delay)

    def _messages(self) -> Iterator[Message]:
        query = urlencode({"channels": self.channels}) if self.channels else ""
        request = urllib.request.Request(f"{self.url.rstrip('/')}/api/realtime/events" + (f"?{query}" if query else ""),
                                         headers={"X-API-Key": self.key, "Accept": "text/event-stream"})
        if self.last_event_id:
            request.add_header("Last-Event-ID", self.last_event_id)
        try:
            response = urllib.request.urlopen(request, timeout=self.read_timeout)
        except urllib.error.HTTPError as exc:
            body = _error_text(exc)
            if 400 <= exc.code < 500:
                raise Refused(f"the gateway refused the stream ({exc.code}): {body}") from None
            raise OSError(f"HTTP {exc.code}: {body}") from None
        with response:
            yield from _parse(response)

    def _show(self, message: Message) -> bool:
        """Print what ``message`` carries; True once ``--count`` events were printed."""
        if message.id:
            self.last_event_id = message.id
        if message.event == "connected":
            hello = json.loads(message.data)
            how = "resumed after " + (self.last_event_id or "") if hello.get("resumed") else "connected"
            self._say(f"{how} ({hello.get('processId', '?')}; channels {','.join(hello.get('channels', []))})")
            return False
        if message.event == "reset":
            self._say(f"reset: {json.loads(message.data).get('reason', '')} (events may have been missed)")
            return False
        if message.event in ("heartbeat", "message") or not message.data:
            return False
        for event in json.loads(message.data).get("events", []):
            if self.types and event.get("type") not in self.types:
                continue
            print(json.dumps(event, ensure_ascii=False) if self.as_json else event_line(event), file=self.out,
                  flush=True)
            self.printed += 1
            if self.count is not None and self.printed >= self.count:
                return True
        return False

    def _say(self, text: str) -> None:
        print(f"rakuda tail: {text}", file=self.err, flush=True)


def event_line(event: dict[str, Any]) -> str:
    """``time type id action {payload}``: one event on one line, the payload compact and cut at 200 chars."""
    payload = event.get("payload") or {}
    data = json.dumps(payload.get("data") or {}, ensure_ascii=False, separators=(",", ":"))
    if len(data) > 200:
        data = data[:199] + "…"
    return " ".join((str(event.get("timestamp", "-")), str(event.get("type", "-")), str(event.get("id", "-")),
                     f"{payload.get('action', '-')}:{payload.get('id', '-')}", data))


def _parse(lines: Iterable[bytes]) -> Iterator[Message]:
    parser = SseParser()
    for raw in lines:
        message = parser.feed(raw.decode("utf-8", "replace"))
        if message is not None:
            yield message


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", exc.reason))
    except (ValueError, OSError):
        return str(exc.reason)


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc) or exc.__class__.__name__
