"""Publishing events to Redis, so that nothing published is lost to a reconnecting reader.

Each publish runs one Lua script, atomically:

* ``XADD`` to the capped history stream (the entry id becomes the event's bus id), which
  gateways read and replay from after a reconnect;
* ``PUBLISH`` on the event's channel, so a plain ``SUBSCRIBE rakuda:realtime:orders``
  still receives every event as JSON (a simple subscriber needs nothing more);
* a per-day ``published:<TYPE>`` counter for ``/api/realtime/stats``.

A publish that Redis does not take raises :class:`PublishError`: it is never dropped
silently. Callers that must not lose an event keep it (the task side's outbox does).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import redis

from shared.config import Settings, get_settings
from shared.constants import (
    CHANNEL_TYPES,
    HISTORY_EPOCH,
    HISTORY_STREAM,
    METRICS_TOTALS,
    STATS_DAY_PREFIX,
    channel_for_name,
)
from shared.consumer import Consumer, Entry, group_status
from shared.exceptions import ChannelMismatchError, PublishError, UnknownChannelError
from shared.realtime import EncodedEvent, RealTimeEvent
from shared.redis_client import redis_for
from shared.redis_replies import text

log = logging.getLogger(__name__)

__all__ = ["Consumer", "Entry", "EventBus", "event_bus", "group_status"]

EventLike = RealTimeEvent | EncodedEvent | dict[str, Any] | str

_PUBLISH_SCRIPT = """
local maxlen, max_age_ms, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
redis.call('SET', KEYS[3], ARGV[4], 'NX')
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids, counts = {}, {}
for i = 5, #ARGV, 3 do
  local channel, etype, body = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 't', etype, 'e', body)
  redis.call('PUBLISH', channel, '{"id":"' .. id .. '",' .. string.sub(body, 2))
  counts[etype] = (counts[etype] or 0) + 1
  ids[#ids + 1] = id
end
for etype, n in pairs(counts) do
  redis.call('HINCRBY', KEYS[2], 'published:' .. etype, n)
  redis.call('HINCRBY', KEYS[4], 'published:' .. etype, n)
end
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('XTRIM', KEYS[1], 'MINID', '~', tostring(now_ms - max_age_ms) .. '-0')
return ids
"""

# Events per script call in publish_many: big enough for one round trip per typical batch,
# small enough that Redis is never blocked for long by one call.
PUBLISH_CHUNK = 1000


def new_epoch() -> str:
    """A candidate epoch: taken only where the history has none (SET NX)."""
    return uuid.uuid4().hex[:8]


def ensure_epoch(client: redis.Redis) -> str:
    """The history's epoch, created if this Redis has none (yet, or any more)."""
    pipe = client.pipeline()
    pipe.set(HISTORY_EPOCH, new_epoch(), nx=True)
    pipe.get(HISTORY_EPOCH)
    value = pipe.execute()[1]
    return value.decode() if isinstance(value, bytes) else value


def stats_day_key(day: datetime | None = None) -> str:
    day = day or datetime.now(UTC)
    return STATS_DAY_PREFIX + day.strftime("%Y-%m-%d")


class Subscription:
    """A running subscription; ``close()`` stops its thread and its Redis connection."""

    def __init__(self, pubsub: redis.client.PubSub, thread: threading.Thread) -> None:
        self._pubsub = pubsub
        self._thread = thread

    def close(self) -> None:
        self._thread.stop()  # type: ignore[attr-defined]
        self._thread.join(timeout=5)
        self._pubsub.close()


class EventBus:
    """Unbound until ``initialize()``; the module singleton ``event_bus`` is shared per process."""

    def __init__(self) -> None:
        self._redis: redis.Redis | None = None
        self._settings: Settings | None = None
        self._script: Any = None
        self._subscriptions: list[Subscription] = []
        self._owns_redis = False

    # --- lifecycle ---
    def initialize(self, settings: Settings | None = None, client: redis.Redis | None = None) -> None:
        """Bind to Redis (REDIS_URL or Sentinel, unless a client is given). Safe to call again."""
        self.close()
        self._settings = settings or get_settings()
        self._owns_redis = client is None
        self._redis = client or redis_for(self._settings)
        self._script = self._redis.register_script(_PUBLISH_SCRIPT)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self.initialize()
        assert self._settings is not None
        return self._settings

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self.initialize()
        assert self._redis is not None
        return self._redis

    def close(self) -> None:
        for sub in self._subscriptions:
            sub.close()
        self._subscriptions.clear()
        if self._redis is not None:
            self._redis.close()
            if self._owns_redis:  # Redis.close() leaves a pool it was given connected
                self._redis.connection_pool.disconnect()
        self._redis = None
        self._script = None

    # --- publishing ---
    def publish(self, channel: str, event: EventLike) -> str | None:
        """Publish one event; returns its bus id (None when REALTIME_ENABLED is false)."""
        ids = self.publish_many(channel, [event])
        return ids[0] if ids else None

    def publish_many(self, channel: str, events: Iterable[EventLike]) -> list[str]:
        """Publish events in order, one round trip per PUBLISH_CHUNK; returns their bus ids.

        Every event is validated before any is sent: one bad event publishes nothing. An
        ``EncodedEvent`` was validated when it was made: only its type is checked here.
        """
        full_channel = _resolve(channel)
        expected_type = CHANNEL_TYPES[full_channel]
        checked: list[RealTimeEvent | EncodedEvent] = []
        for raw in events:
            event = raw if isinstance(raw, EncodedEvent) else RealTimeEvent.parse(raw)
            event_type = event.type if isinstance(event, EncodedEvent) else event.type.value
            if event_type != expected_type:
                raise ChannelMismatchError(full_channel, event_type, _channel_of(event_type))
            checked.append(event)
        if not checked:
            return []
        settings = self.settings
        if not settings.realtime_enabled:
            log.info("REALTIME_ENABLED is false: %d event(s) for %s not published", len(checked), full_channel)
            return []
        header = [settings.history_max_events, settings.history_max_age_s * 1000,
                  settings.stats_retention_days * 86400, new_epoch()]
        keys = [HISTORY_STREAM, stats_day_key(), HISTORY_EPOCH, METRICS_TOTALS]
        ids: list[str] = []
        try:
            # Encoded chunk by chunk, so that the first events of a big batch leave early.
            for start in range(0, len(checked), PUBLISH_CHUNK):
                args: list[Any] = list(header)
                for event in checked[start:start + PUBLISH_CHUNK]:
                    body = event.json if isinstance(event, EncodedEvent) else event.to_json()
                    args += (full_channel, expected_type, body)
                ids += [text(i) for i in cast(list[Any], self._script(keys=keys, args=args, client=self.redis))]
        except redis.RedisError as exc:
            raise PublishError(full_channel, exc) from exc
        return ids

    # --- subscribing ---
    def subscribe(self, channel: str, handler: Callable[[RealTimeEvent], Any]) -> Subscription:
        """Call ``handler(event)`` in a background thread for each event published on ``channel``.

        Pub/Sub is at-most-once: a subscriber that needs every event reads the history
        stream instead (the gateway does).
        """
        full_channel = _resolve(channel)

        def deliver(message: dict[str, Any]) -> None:
            try:
                event = RealTimeEvent.parse(message["data"])
            except ValueError:
                log.exception("undecodable message on %s: %r", full_channel, message["data"][:200])
                return
            try:
                handler(event)
            except Exception:
                log.exception("subscriber of %s failed on event %s", full_channel, event.id)

        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(**{full_channel: deliver})
        thread = pubsub.run_in_thread(sleep_time=0.05, daemon=True)
        sub = Subscription(pubsub, thread)
        self._subscriptions.append(sub)
        return sub

    # --- durable consumers ---
    def consumer(self, group: str, handler: Callable[[RealTimeEvent], Any] | None = None, *,
                 types: Iterable[str] | None = None, start: str = "$", name: str | None = None) -> Consumer:
        """A member of consumer group ``group`` on the history stream (see :mod:`shared.consumer`)."""
        client = redis_for(self.settings, socket_timeout=None)
        return Consumer(client, self.settings, group, handler, types=types, start=start, name=name)

    def consume(self, group: str, handler: Callable[[RealTimeEvent], Any], *,
                types: Iterable[str] | None = None, start: str = "$", name: str | None = None) -> None:
        """Block, calling ``handler(event)`` for every event of the group; each entry is
        acknowledged only after the handler returned. Ends on KeyboardInterrupt."""
        consumer = self.consumer(group, handler, types=types, start=start, name=name)
        try:
            consumer.run()
        except KeyboardInterrupt:
            consumer.stop()
        finally:
            consumer.redis.close()


def _resolve(channel: str) -> str:
    try:
        return channel_for_name(channel)
    except KeyError:
        raise UnknownChannelError(channel) from None


def _channel_of(event_type: str) -> str:
    from shared.constants import TYPE_CHANNELS

    return TYPE_CHANNELS[event_type]


event_bus = EventBus()
