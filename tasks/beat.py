"""A beat scheduler that fires only while it holds a Redis lock, so two beats never double-fire.

    celery -A tasks.worker beat --scheduler tasks.beat:SingleBeatScheduler

Every beat process tries to take ``rakuda:beat:lock`` (SET NX with a TTL of BEAT_LOCK_TTL
seconds) before each tick and renews it while it holds it; the others wait, checking every
third of the TTL. When the holder dies its lock expires and a waiting beat takes over within
one TTL. Ticks never sleep longer than a third of the TTL, so a live holder never loses it.
The schedule is kept in memory (no shelve file to share or corrupt).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from celery.beat import Scheduler

from shared.redis_client import redis_for

log = logging.getLogger(__name__)

BEAT_LOCK_KEY = "rakuda:beat:lock"

# Take the lock if free, renew it if ours; 1 when held by us afterwards.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SingleBeatScheduler(Scheduler):
    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        settings = app.runtime.settings
        self.lock_ttl_s: float = max(settings.beat_lock_ttl_s, 1.0)
        self.token = uuid.uuid4().hex
        self.lock_redis = redis_for(settings, max_connections=2)
        self.holding = False
        super().__init__(app, *args, **kwargs)
        self.max_interval = min(self.max_interval, self.lock_ttl_s / 3)

    def hold_lock(self) -> bool:
        try:
            held = bool(self.lock_redis.eval(_HOLD, 1, BEAT_LOCK_KEY, self.token, int(self.lock_ttl_s * 1000)))
        except redis.RedisError as exc:
            log.warning("beat lock unavailable (%s): not firing", exc)
            held = False
        if held != self.holding:
            log.warning("beat %s %s the lock %s", self.token[:8], "took" if held else "lost", BEAT_LOCK_KEY)
            if held:
                # entries due while another beat held the lock were fired by it: start afresh
                for entry in self.schedule.values():
                    entry.last_run_at = self.app.now()
        self.holding = held
        return held

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.hold_lock():
            return self.lock_ttl_s / 3
        return min(float(super().tick(*args, **kwargs)), self.lock_ttl_s / 3)

    def close(self) -> None:
        try:
            if self.holding:
                self.lock_redis.eval(_RELEASE, 1, BEAT_LOCK_KEY, self.token)
        except redis.RedisError:
            pass
        finally:
            self.lock_redis.close()
            super().close()
