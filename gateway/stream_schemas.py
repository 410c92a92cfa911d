"""The stream's messages (text/event-stream) as pydantic models, for the OpenAPI description."""

from __future__ import annotations

from pydantic import Field

from gateway.api_schemas import Model
from shared.realtime import RealTimeEvent


class Connected(Model):
    """``event: connected``, first on every stream."""

    connectionId: str
    channels: list[str]
    heartbeatInterval: int
    debounceWindow: int
    processId: str
    resumed: bool


class Heartbeat(Model):
    """``event: heartbeat``; its ``id:`` is the stream cursor."""

    time: str


class Reset(Model):
    """``event: reset``: the Last-Event-ID cannot be resumed; refetch everything."""

    reason: str
    lastEventId: str | None = None


class EventBatch(Model):
    """``event: <TYPE>``: the events of one type within one debounce window."""

    type: str
    count: int = Field(description="events in the window; more than len(events) when truncated")
    events: list[RealTimeEvent]
    truncated: bool | None = None


STREAM_MESSAGES: dict[str, type[Model]] = {
    "connected": Connected, "heartbeat": Heartbeat, "reset": Reset, "EventBatch": EventBatch,
}
