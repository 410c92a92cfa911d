"""The event schema both sides agree on: ``RealTimeEvent``, its type and its payload."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.exceptions import InvalidEventError


class RealTimeEventType(StrEnum):
    INVENTORY_CHANGE = "INVENTORY_CHANGE"
    ORDER_RECEIVED = "ORDER_RECEIVED"
    PRICE_CHANGE = "PRICE_CHANGE"
    LISTING_UPDATE = "LISTING_UPDATE"


Action = Literal["created", "updated", "deleted"]


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_json(value: Any, path: str) -> None:
    """Raise InvalidEventError unless ``value`` is plain JSON (no NaN, no objects of other kinds)."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEventError(path, f"{value!r} is not a JSON number")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEventError(path, f"key {key!r} is not a string")
            _check_json(item, f"{path}.{key}")
        return
    raise InvalidEventError(path, f"{type(value).__name__} is not JSON")


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    action: Action
    data: dict[str, Any] | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


class RealTimeEvent(BaseModel):
    """One change: ``type``, ``payload`` {id, action, data}, ``timestamp``; ``id`` once published."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: RealTimeEventType
    payload: EventPayload
    timestamp: str = Field(default_factory=utc_now_iso)
    id: str | None = None

    @field_validator("timestamp")
    @classmethod
    def _timestamp_is_iso_utc(cls, value: str) -> str:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
        offset = parsed.utcoffset()
        if offset is None or offset.total_seconds() != 0:
            raise ValueError(f"{value!r} is not in UTC")
        return value

    @classmethod
    def parse(cls, value: RealTimeEvent | dict[str, Any] | str | bytes) -> RealTimeEvent:
        """Validate an event given as a model, a dict or JSON; InvalidEventError names the field."""
        if isinstance(value, RealTimeEvent):
            event = value
        else:
            try:
                if isinstance(value, (str, bytes)):
                    event = cls.model_validate_json(value)
                else:
                    if isinstance(value, dict):
                        payload = value.get("payload")
                        if isinstance(payload, dict) and "data" in payload:
                            _check_json(payload["data"], "payload.data")
                    event = cls.model_validate(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(part) for part in first["loc"]) or "event"
                raise InvalidEventError(field, first["msg"]) from None
        # JSON text may carry NaN/Infinity, and a model built by hand anything at all.
        if event.payload.data is not None:
            _check_json(event.payload.data, "payload.data")
        return event

    @classmethod
    def create(
        cls,
        type: RealTimeEventType | str,
        id: str | int,
        action: Action,
        data: dict[str, Any] | None = None,
    ) -> RealTimeEvent:
        """Build and validate an event with the current UTC timestamp."""
        payload: dict[str, Any] = {"id": id, "action": action}
        if data is not None:
            payload["data"] = data
        return cls.parse({"type": type, "payload": payload})

    def to_json(self) -> str:
        """Compact JSON without the bus id (the bus adds it when it publishes)."""
        body: dict[str, Any] = {
            "type": self.type.value,
            "payload": self.payload.model_dump(exclude_none=True),
            "timestamp": self.timestamp,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def with_bus_id(event_json: str, bus_id: str) -> str:
    """Splice ``"id": bus_id`` into the JSON object ``event_json`` without re-encoding it."""
    return '{"id":"' + bus_id + '",' + event_json[1:]
