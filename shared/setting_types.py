"""The kinds of value a setting can hold, as environment variables spell them (pydantic annotated types)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator
from pydantic_settings import NoDecode

from shared.constants import TYPE_CHANNELS


def blank_is_false(raw: object) -> object:
    """An empty variable (``KEY=``) switches a flag off; other spellings are pydantic's."""
    return False if isinstance(raw, str) and not raw.strip() else raw


def lowercase(raw: object) -> object:
    return raw.strip().lower() if isinstance(raw, str) else raw


def comma_list(raw: object) -> object:
    """``"a, b,,c"`` → ("a", "b", "c"); a tuple or list passes through."""
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def host_ports(raw: object) -> object:
    entries = comma_list(raw)
    for entry in entries if isinstance(entries, tuple | list) else ():
        host, sep, port = str(entry).rpartition(":")
        if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port[,host:port...], got {entry!r}")
    return entries


def type_windows(raw: object) -> object:
    """``ORDER_RECEIVED:0,PRICE_CHANGE:2000`` → ("ORDER_RECEIVED:0", "PRICE_CHANGE:2000"), checked."""
    entries = comma_list(raw)
    out: dict[str, int] = {}
    for part in entries if isinstance(entries, tuple | list) else ():
        event_type, sep, ms = str(part).partition(":")
        event_type = event_type.strip().upper()
        if not sep or event_type not in TYPE_CHANNELS:
            raise ValueError(f"expected TYPE:ms pairs with TYPE one of {', '.join(TYPE_CHANNELS)}, got {part!r}")
        if not ms.strip().isdigit():
            raise ValueError(f"expected a whole number of ms, got {part!r}")
        out[event_type] = int(ms)
    return tuple(f"{t}:{ms}" for t, ms in out.items())


# NoDecode: a list arrives as "a,b,c", not as JSON.
Flag = Annotated[bool, BeforeValidator(blank_is_false)]
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(comma_list)]
HostPorts = Annotated[tuple[str, ...], NoDecode, BeforeValidator(host_ports)]
TypeWindows = Annotated[tuple[str, ...], NoDecode, BeforeValidator(type_windows)]
Environment = Annotated[Literal["development", "production"], BeforeValidator(lowercase)]
LogFormat = Annotated[Literal["text", "json"], BeforeValidator(lowercase)]
LogLevel = Annotated[Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(lowercase)]
