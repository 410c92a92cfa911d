"""Publishing events to Redis, so that nothing published is lost to a reconnecting reader.

Each publish runs one Lua script (:mod:`shared.publish_script`), atomically:

* ``XADD`` to the capped history stream (the entry id becomes the event's bus id), which
  gateways read and replay from after a reconnect;
* ``PUBLISH`` on the event's channel, so a plain ``SUBSCRIBE rakuda:realtime:orders``
  still receives every event as JSON (a simple subscriber needs nothing more);
* a per-day ``published:<TYPE>`` counter for ``/api/realtime/stats``.

The channel follows from the event's type (:class:`shared.constants.Channel`):
``publish(event)``; ``publish(channel, event)`` also works and refuses an event of another channel.

A publish that Redis does not take raises :class:`PublishError`: it is never dropped
silently. Callers that must not lose an event keep it (the task side's outbox does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast, overload

import redis

from shared.config import Settings, get_settings
from shared.constants import Channel
from shared.consumer import Consumer, Entry, group_status
from shared.exceptions import BusNotInitializedError, ChannelMismatchError, PublishError, UnknownChannelError
from shared.publish_script import (
    PUBLISH_CHUNK,
    PUBLISH_SCRIPT,
    ensure_epoch,
    new_epoch,
    script_header,
    script_keys,
    stats_day_key,
)
from shared.realtime import EncodedEvent, RealTimeEvent
from shared.redis_client import redis_for
from shared.redis_replies import text
from shared.subscription import Subscription, start_subscription

log = logging.getLogger(__name__)

__all__ = ["PUBLISH_CHUNK", "Consumer", "Entry", "EventBus", "ensure_epoch", "event_bus", "group_status",
           "new_epoch", "stats_day_key", "Subscription"]

EventLike = RealTimeEvent | EncodedEvent | dict[str, Any] | str


class Outgoing(NamedTuple):
    """An event checked for publishing, and the channel its type belongs on."""

    channel: Channel
    event: RealTimeEvent | EncodedEvent

    def script_args(self) -> tuple[str, str, str]:
        body = self.event.json if isinstance(self.event, EncodedEvent) else self.event.to_json()
        return self.channel.value, self.channel.event_type.value, body


class EventBus:
    """Unbound until ``initialize()``; the module singleton ``event_bus`` is shared per process.

    ``publish``, ``subscribe`` and ``consumer`` of a bus never initialised bind it to the
    environment's settings first; the ``settings`` and ``redis`` properties only report what
    is bound and raise :class:`BusNotInitializedError` before that.
    """

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
        self._script = self._redis.register_script(PUBLISH_SCRIPT)

    def _bound(self) -> tuple[Settings, redis.Redis]:
        """The settings and client, binding first if unbound (to the settings it had, or the environment's)."""
        if self._redis is None or self._settings is None:
            self.initialize(self._settings)
        return self.settings, self.redis

    @property
    def initialized(self) -> bool:
        return self._redis is not None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise BusNotInitializedError("settings")
        return self._settings

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            raise BusNotInitializedError("redis")
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
    @overload
    def publish(self, event: EventLike, /) -> str | None: ...
    @overload
    def publish(self, channel: str, event: EventLike, /) -> str | None: ...

    def publish(self, channel_or_event: EventLike, event: EventLike | None = None, /) -> str | None:
        """Publish one event on its type's channel; returns its bus id (None when REALTIME_ENABLED is false).

        ``publish(event)``, or ``publish(channel, event)``, which refuses an event of another channel.
        """
        if event is None:
            ids = self.publish_many([channel_or_event])
        else:
            ids = self.publish_many(_channel_argument(channel_or_event), [event])
        return ids[0] if ids else None

    @overload
    def publish_many(self, events: Iterable[EventLike], /) -> list[str]: ...
    @overload
    def publish_many(self, channel: str, events: Iterable[EventLike], /) -> list[str]: ...

    def publish_many(self, channel_or_events: str | Iterable[EventLike],
                     events: Iterable[EventLike] | None = None, /) -> list[str]:
        """Publish events in order, each on its type's channel, one round trip per PUBLISH_CHUNK;
        returns their bus ids. With a ``channel`` first, every event must belong on it.

        Every event is validated before any is sent: one bad event publishes nothing. An
        ``EncodedEvent`` was validated when it was made: only its type is looked at here.
        """
        if events is None:
            if isinstance(channel_or_events, str):
                raise TypeError("publish_many takes (events) or (channel, events), not a channel alone")
            channel, events = None, channel_or_events
        else:
            channel = _resolve(_channel_argument(channel_or_events))
        outgoing = [_checked(raw, channel) for raw in events]
        if not outgoing:
            return []
        settings, client = self._bound()
        where = channel.value if channel else ", ".join(sorted({o.channel.value for o in outgoing}))
        if not settings.realtime_enabled:
            log.info("REALTIME_ENABLED is false: %d event(s) for %s not published", len(outgoing), where)
            return []
        header, keys = script_header(settings), script_keys()
        ids: list[str] = []
        try:
            # Encoded chunk by chunk, so that the first events of a big batch leave early.
            for start in range(0, len(outgoing), PUBLISH_CHUNK):
                args: list[Any] = list(header)
                for item in outgoing[start:start + PUBLISH_CHUNK]:
                    args += item.script_args()
                ids += [text(i) for i in cast(list[Any], self._script(keys=keys, args=args, client=client))]
        except redis.RedisError as exc:
            raise PublishError(where, exc) from exc
        return ids

    # --- subscribing ---
    def subscribe(self, channel: str, handler: Callable[[RealTimeEvent], Any]) -> Subscription:
        """Call ``handler(event)`` in a background thread for each event published on ``channel``.

        Pub/Sub is at-most-once: a subscriber that needs every event reads the history
        stream instead (the gateway does).
        """
        sub = start_subscription(self._bound()[1], _resolve(channel).value, handler)
        self._subscriptions.append(sub)
        return sub

    # --- durable consumers ---
    def consumer(self, group: str, handler: Callable[[RealTimeEvent], Any] | None = None, *,
                 types: Iterable[str] | None = None, start: str = "$", name: str | None = None) -> Consumer:
        """A member of consumer group ``group`` on the history stream (see :mod:`shared.consumer`)."""
        settings = self._bound()[0]
        client = redis_for(settings, socket_timeout=None)
        return Consumer(client, settings, group, handler, types=types, start=start, name=name)

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


def _channel_argument(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a channel is a name like 'orders' or 'rakuda:realtime:orders', not {value!r}")
    return value


def _resolve(channel: str) -> Channel:
    try:
        return Channel.named(channel)
    except KeyError:
        raise UnknownChannelError(channel) from None


def _checked(raw: EventLike, channel: Channel | None) -> Outgoing:
    """``raw`` validated (unless it already was) with its type's channel; refused if not ``channel``."""
    event = raw if isinstance(raw, EncodedEvent) else RealTimeEvent.parse(raw)
    event_type = event.type if isinstance(event, EncodedEvent) else event.type.value
    own = Channel.of_type(event_type)
    if channel is not None and own is not channel:
        raise ChannelMismatchError(channel.value, event_type, own.value)
    return Outgoing(own, event)


event_bus = EventBus()
