"""Channel names and Redis keys, namespaced in one place (``rakuda:realtime:...``)."""

from __future__ import annotations

from typing import Final

EVENT_CHANNELS: Final = {
    "INVENTORY": "rakuda:realtime:inventory",
    "ORDERS": "rakuda:realtime:orders",
    "PRICING": "rakuda:realtime:pricing",
    "LISTINGS": "rakuda:realtime:listings",
}

# Which channel carries which event type: one type per channel, so a channel filter
# is also a type filter and a debounce window per type never spans channels.
TYPE_CHANNELS: Final = {
    "INVENTORY_CHANGE": EVENT_CHANNELS["INVENTORY"],
    "ORDER_RECEIVED": EVENT_CHANNELS["ORDERS"],
    "PRICE_CHANGE": EVENT_CHANNELS["PRICING"],
    "LISTING_UPDATE": EVENT_CHANNELS["LISTINGS"],
}
CHANNEL_TYPES: Final = {channel: t for t, channel in TYPE_CHANNELS.items()}

# Short names used in URLs (?channels=inventory,orders) and in the stream entries.
CHANNEL_NAMES: Final = {full.rsplit(":", 1)[1]: full for full in EVENT_CHANNELS.values()}

KEY_PREFIX: Final = "rakuda:realtime:"
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
    if name in CHANNEL_TYPES:
        return name
    return CHANNEL_NAMES[name]


def short_name(channel: str) -> str:
    return channel.rsplit(":", 1)[1]
