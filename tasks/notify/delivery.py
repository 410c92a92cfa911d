"""Delivering one notification to one target: retries with backoff and jitter, a sent-ids record
so that a notification is sent once, and the dead-letter store when every attempt failed."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import requests

from shared.config import Settings
from shared.constants import KEY_PREFIX
from shared.notify_store import DEAD_NOTIFICATIONS
from tasks.notify.messages import Notification
from tasks.notify.targets import DeliveryFailed, Target

log = logging.getLogger(__name__)

SENT_PREFIX = KEY_PREFIX + "notify:sent:"  # + target + ":" + notification id, with TTL
COUNTS_PREFIX = KEY_PREFIX + "notify:counts:"  # + target, hash: sent, failed, dead


def sent_key(target: str, notification_id: str) -> str:
    return f"{SENT_PREFIX}{target}:{notification_id}"


def backoff(attempt: int, base_s: float, max_s: float, rng: Callable[[], float] = random.random) -> float:
    """Delay before attempt ``attempt + 1``: base·2^(attempt-1), capped, times a jitter in [0.5, 1)."""
    return min(max_s, base_s * 2.0 ** (attempt - 1)) * (0.5 + rng() / 2)


@dataclass
class Outcome:
    sent: bool
    attempts: int
    error: str | None = None
    skipped: bool = False  # sent before (the sent-ids record says so)


class Deliverer:
    def __init__(self, client: redis.Redis, settings: Settings, target: Target,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.redis = client
        self.settings = settings
        self.target = target
        self.session = requests.Session()
        self.sleep = sleep

    def already_sent(self, notification_id: str) -> bool:
        return bool(self.redis.exists(sent_key(self.target.name, notification_id)))

    def mark_sent(self, ids: list[str]) -> None:
        pipe = self.redis.pipeline()
        for i in ids:
            pipe.set(sent_key(self.target.name, i), "1", ex=self.settings.notify_sent_ttl_s)
        pipe.hincrby(COUNTS_PREFIX + self.target.name, "sent", 1)
        pipe.execute()

    def deliver(self, notification: Notification, event_ids: list[str] | None = None) -> Outcome:
        """Send unless sent before; retry what may pass later; dead-letter what never did.

        ``event_ids``: the events this notification stands for, recorded as sent with it.
        """
        ids = [notification.id, *(event_ids or [])]
        if self.already_sent(notification.id):
            return Outcome(sent=True, attempts=0, skipped=True)
        s = self.settings
        error = ""
        attempt = 0
        while attempt < s.notify_max_attempts:
            attempt += 1
            try:
                self.target.send(self.session, notification)
            except DeliveryFailed as exc:
                error = str(exc)
                self.redis.hincrby(COUNTS_PREFIX + self.target.name, "failed", 1)
                if not exc.retryable or attempt >= s.notify_max_attempts:
                    break
                delay = exc.retry_after if exc.retry_after is not None else backoff(
                    attempt, s.notify_backoff_s, s.notify_backoff_max_s)
                log.warning("%s: attempt %d of %d for %s failed (%s); next in %.2fs", self.target.name, attempt,
                            s.notify_max_attempts, notification.id, error, delay)
                self.sleep(delay)
                continue
            self.mark_sent(ids)
            return Outcome(sent=True, attempts=attempt)
        self.dead_letter(notification, error, attempt)
        return Outcome(sent=False, attempts=attempt, error=error)

    def dead_letter(self, notification: Notification, error: str, attempts: int) -> str:
        dead_id = uuid.uuid4().hex[:12]
        record = {"id": dead_id, "target": self.target.name, "error": error, "attempts": attempts,
                  "at": time.time(), "notification": notification.to_json()}
        log.error("%s: %s dead-lettered after %d attempt(s): %s", self.target.name, notification.id, attempts,
                  error)
        pipe = self.redis.pipeline()
        pipe.hset(DEAD_NOTIFICATIONS, dead_id, json.dumps(record))
        pipe.hincrby(COUNTS_PREFIX + self.target.name, "dead", 1)
        pipe.execute()
        return dead_id
