"""Pub/Sub subscriptions: a handler called in a background thread for each event on a channel.

Pub/Sub is at-most-once: a subscriber that needs every event reads the history stream
instead (the gateway does, and :mod:`shared.consumer` does for durable consumers).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from shared.realtime import RealTimeEvent

log = logging.getLogger(__name__)


class Subscription:
    """A running subscription; ``close()`` stops its thread and its Redis connection."""

    def __init__(self, pubsub: redis.client.PubSub, thread: threading.Thread) -> None:
        self._pubsub = pubsub
        self._thread = thread

    def close(self) -> None:
        self._thread.stop()  # type: ignore[attr-defined]
        self._thread.join(timeout=5)
        self._pubsub.close()


def start_subscription(client: redis.Redis, channel: str, handler: Callable[[RealTimeEvent], Any]) -> Subscription:
    """Subscribe ``client`` to ``channel`` (a Redis key) and call ``handler`` with each event it carries."""

    def deliver(message: dict[str, Any]) -> None:
        try:
            event = RealTimeEvent.parse(message["data"])
        except ValueError:
            log.exception("undecodable message on %s: %r", channel, message["data"][:200])
            return
        try:
            handler(event)
        except Exception:
            log.exception("subscriber of %s failed on event %s", channel, event.id)

    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(**{channel: deliver})
    thread = pubsub.run_in_thread(sleep_time=0.05, daemon=True)
    return Subscription(pubsub, thread)
