"""The channels of the bus (`Channel`) and every Redis key, namespaced in one place (``rakuda:realtime:...``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from shared.realtime import RealTimeEventType

KEY_PREFIX: Final = "rakuda:realtime:"


class Channel(StrEnum):
    """A Pub/Sub channel: its value is the Redis key; each carries exactly one event type.

    One type per channel, so a channel filter is also a type filter and a debounce window per
    type never spans channels.
    """

    event_type: RealTimeEventType

    def __new__(cls, key: str, event_type: RealTimeEventType) -> Channel:
        member = str.__new__(cls, key)
        member._value_ = key
        member.event_type = event_type
        return member

    INVENTORY = KEY_PREFIX + "inventory", RealTimeEventType.INVENTORY_CHANGE
    ORDERS = KEY_PREFIX + "orders", RealTimeEventType.ORDER_RECEIVED
    PRICING = KEY_PREFIX + "pricing", RealTimeEventType.PRICE_CHANGE
    LISTINGS = KEY_PREFIX + "listings", RealTimeEventType.LISTING_UPDATE

    @property
    def short_name(self) -> str:
        """The name used in URLs (``?channels=inventory,orders``) and in the stream entries."""
        return self.value.removeprefix(KEY_PREFIX)

    @classmethod
    def of_type(cls, event_type: str) -> Channel:
        """The channel that carries ``event_type``; KeyError if no channel does."""
        return _BY_TYPE[event_type]

    @classmethod
    def named(cls, name: str) -> Channel:
        """The channel with this short name (``orders``) or Redis key; KeyError if unknown."""
        return _BY_NAME[name]


_BY_TYPE: Final = {channel.event_type.value: channel for channel in Channel}
_BY_NAME: Final = {**{channel.short_name: channel for channel in Channel}, **{c.value: c for c in Channel}}

# The public names of the same facts, as plain strings.
EVENT_CHANNELS: Final = {channel.name: channel.value for channel in Channel}
TYPE_CHANNELS: Final = {channel.event_type.value: channel.value for channel in Channel}
CHANNEL_TYPES: Final = {channel.value: channel.event_type.value for channel in Channel}
CHANNEL_NAMES: Final = {channel.short_name: channel.value for channel in Channel}

# Every published event is appended here (capped), which is what makes resume possible.
HISTORY_STREAM: Final = KEY_PREFIX + "history"
# Names this incarnation of the history: a Redis that lost its data (a restart without
# persistence, a flush) gets a new epoch, so an id from before can never resume silently.
HISTORY_EPOCH: Final = KEY_PREFIX + "history:epoch"
STATS_DAY_PREFIX: Final = KEY_PREFIX + "stats:"  # + YYYY-MM-DD, a hash
# All-time counters of the whole cluster (a hash, never expires): what /metrics exposes as
# Prometheus counters. Fields are ``<name>:<label>[:<label>]``, e.g. ``published:ORDER_RECEIVED``.
METRICS_TOTALS: Final = KEY_PREFIX + "metrics"
# Upper edges (seconds) of the task duration histogram: workers count in these buckets
# (tasks.metrics), the gateway exposes them (gateway.prometheus).
TASK_DURATION_EDGES_S: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PROCESS_PREFIX: Final = KEY_PREFIX + "process:"  # + process id, a JSON snapshot with TTL
AUTH_FAILURES_PREFIX: Final = KEY_PREFIX + "authfail:"  # + client address, a counter
# Development only (no SECRET_KEY): the random token secret every gateway process shares.
DEV_TOKEN_SECRET: Final = KEY_PREFIX + "dev-token-secret"
AUTH_BLOCKED: Final = KEY_PREFIX + "authblocked"  # sorted set: address -> blocked until
AUTH_TRACKED: Final = KEY_PREFIX + "authtracked"  # sorted set: address -> time of its last failure
AUTH_FAILURE_COUNTS: Final = KEY_PREFIX + "authfailures"  # hash: address -> failures since it was quiet
STREAMS_BY_KEY_PREFIX: Final = KEY_PREFIX + "streams:key:"  # + key fingerprint; sorted set: stream -> lease end
STREAMS_BY_ADDRESS_PREFIX: Final = KEY_PREFIX + "streams:addr:"  # + address; sorted set: stream -> lease end
NEW_STREAMS_BUCKET_PREFIX: Final = KEY_PREFIX + "newstreams:"  # + address; hash: tokens, at


def channel_for_name(name: str) -> str:
    """Full channel name for a short name (``orders``) or a full one; KeyError if unknown."""
    return Channel.named(name).value


def short_name(channel: str) -> str:
    return channel.rsplit(":", 1)[1]
