"""The event schema both sides agree on: ``RealTimeEvent``, its type and its payload."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.exceptions import InvalidEventError
from shared.timestamps import utc_iso


class RealTimeEventType(StrEnum):
    INVENTORY_CHANGE = "INVENTORY_CHANGE"
    ORDER_RECEIVED = "ORDER_RECEIVED"
    PRICE_CHANGE = "PRICE_CHANGE"
    LISTING_UPDATE = "LISTING_UPDATE"


Action = Literal["created", "updated", "deleted"]
ACTIONS = frozenset(get_args(Action))


def utc_now_iso() -> str:
    """Now, as an event's ``timestamp``: ISO 8601 in UTC with milliseconds and a ``Z``.

    The text of the last millisecond asked for is kept: a task that makes thousands of events
    asks for the same millisecond many times, and formatting it took a sixth of an event's making.
    """
    global _last_stamp
    millisecond = time.time_ns() // 1_000_000
    kept = _last_stamp  # read once: another thread may replace it meanwhile
    if kept[0] != millisecond:
        second, rest = divmod(millisecond, 1000)
        moment = datetime.fromtimestamp(second, UTC).replace(microsecond=rest * 1000)
        kept = _last_stamp = (millisecond, utc_iso(moment))
    return kept[1]


_last_stamp: tuple[int, str] = (-1, "")


# One encoder for every event: json.dumps with arguments builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def compact_json(value: Any) -> str:
    """``value`` as an event's JSON is written: no spaces, non-ASCII as is, no NaN."""
    return _COMPACT_JSON.encode(value)


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


def checked_timestamp(value: str) -> str:
    """``value`` if it is an ISO 8601 timestamp in UTC; ValueError otherwise."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    offset = parsed.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise ValueError(f"{value!r} is not in UTC")
    return value


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
        return checked_timestamp(value)

    @classmethod
    def parse(cls, value: RealTimeEvent | dict[str, Any] | str | bytes) -> RealTimeEvent:
        """Validate an event given as a model, a dict or JSON; InvalidEventError names the field."""
        if isinstance(value, RealTimeEvent):
            event = value
        else:
            try:
                event = cls._validated(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(part) for part in first["loc"]) or "event"
                raise InvalidEventError(field, first["msg"]) from None
        # JSON text may carry NaN/Infinity, and a model built by hand anything at all.
        if event.payload.data is not None:
            _check_json(event.payload.data, "payload.data")
        return event

    @classmethod
    def _validated(cls, value: dict[str, Any] | str | bytes) -> RealTimeEvent:
        if isinstance(value, (str, bytes)):
            return cls.model_validate_json(value)
        payload = value.get("payload")
        if isinstance(payload, dict) and "data" in payload:
            _check_json(payload["data"], "payload.data")  # names the field before pydantic's coarser error
        return cls.model_validate(value)

    @classmethod
    def create(
        cls,
        type: RealTimeEventType | str,
        id: str | int,
        action: Action,
        data: dict[str, Any] | None = None,
        timestamp: str | None = None,
    ) -> RealTimeEvent:
        """Build and validate an event stamped ``timestamp`` (from ``utc_now_iso()``; now by default).

        Events of one change may share one timestamp, taken once.

        Each field is checked here against the same rules as ``parse`` (InvalidEventError names
        the field); the model is then constructed without a second pass, since the timestamp is
        made here and everything else was just checked.
        """
        try:
            event_type = RealTimeEventType(type)
        except ValueError:
            raise InvalidEventError("type", f"{type!r} is not one of {[t.value for t in RealTimeEventType]}") from None
        if isinstance(id, int) and not isinstance(id, bool):
            id = str(id)
        if not isinstance(id, str) or not id:
            raise InvalidEventError("payload.id", f"{id!r} is not a non-empty string or an integer")
        if action not in ACTIONS:
            raise InvalidEventError("payload.action", f"{action!r} is not one of {sorted(ACTIONS)}")
        if data is not None:
            if not isinstance(data, dict):
                raise InvalidEventError("payload.data", f"{data.__class__.__name__} is not an object")
            _check_json(data, "payload.data")
            data = dict(data)
        if timestamp is None:
            timestamp = utc_now_iso()
        else:
            try:
                checked_timestamp(timestamp)
            except (ValueError, AttributeError):
                raise InvalidEventError("timestamp", f"{timestamp!r} is not an ISO 8601 timestamp in UTC") from None
        payload = EventPayload.model_construct(id=id, action=action, data=data)
        return cls.model_construct(type=event_type, payload=payload, timestamp=timestamp, id=None)

    def to_json(self, extra_data: dict[str, Any] | None = None) -> str:
        """Compact JSON without the bus id (the bus adds it when it publishes).

        ``extra_data`` is merged into ``payload.data`` (the outbox adds ``outboxId`` this way).
        """
        payload = self.payload
        body_payload: dict[str, Any] = {"id": payload.id, "action": payload.action}
        data = payload.data if not extra_data else {**(payload.data or {}), **extra_data}
        if data is not None:
            body_payload["data"] = data
        return compact_json({"type": self.type.value, "payload": body_payload, "timestamp": self.timestamp})

    def encoded(self, extra_data: dict[str, Any] | None = None) -> EncodedEvent:
        """This event as JSON ready to publish, with ``extra_data`` merged into ``payload.data``."""
        return EncodedEvent(self.type.value, self.to_json(extra_data))


class EncodedEvent(NamedTuple):
    """An event validated when it was made and encoded once: its type and its JSON (no bus id).

    The bus publishes it as it is; only a ``RealTimeEvent`` (or JSON stored from one) becomes one.
    """

    type: str
    json: str


def with_bus_id(event_json: str, bus_id: str) -> str:
    """Splice ``"id": bus_id`` into the JSON object ``event_json`` without re-encoding it."""
    return '{"id":"' + bus_id + '",' + event_json[1:]
