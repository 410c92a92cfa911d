"""The stream's messages as bytes: built once per message, shared by every client.

An event message is ``event: <TYPE>`` with JSON ``{"type","count","events":[...]}`` (plus
``"truncated": true`` when the window held more events than it carries). Event JSON is
spliced in as published, never decoded and re-encoded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gateway import sse, stream_ids
from gateway.stream_ids import StreamId


def batch_data(event_type: str, events: Sequence[str], count: int) -> str:
    head = '{"type":"' + event_type + '","count":' + str(count) + ',"events":[' + ",".join(events) + "]"
    if count > len(events):
        head += ',"truncated":true'
    return head + "}"


def event_message(event_type: str, data: str, cursor: StreamId, epoch: str) -> bytes:
    return sse.encode(data, event=event_type, id=stream_ids.format_cursor(epoch, cursor))


def json_message(event: str, body: dict[str, Any], cursor: StreamId | None = None, epoch: str = "",
                 retry: int | None = None) -> bytes:
    data = json.dumps(body, separators=(",", ":"))
    sse_id = stream_ids.format_cursor(epoch, cursor) if cursor is not None and epoch else None
    return sse.encode(data, event=event, id=sse_id, retry=retry)

