"""Failed attempts and blocks per address, kept in Redis only (every process reads the same record).

An address is blocked each time its failures reach another multiple of AUTH_MAX_FAILURES:
the first block lasts AUTH_FIRST_BLOCK_SECONDS, each further one twice the one before, up to
AUTH_BLOCK_SECONDS. An address quiet for AUTH_BLOCK_SECONDS starts again from no failures.
At most AUTH_MAX_TRACKED_ADDRESSES addresses are remembered: past that, the one whose last
failure is oldest is forgotten (with its block). A gateway process caches the blocked set for
at most :data:`CACHE_SECONDS`, so an unblock reaches every process within that time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from shared.client_addresses import client_unit
from shared.config import Settings
from shared.constants import AUTH_BLOCKED, AUTH_FAILURE_COUNTS, AUTH_TRACKED
from shared.redis_replies import scored_members

CACHE_SECONDS = 2.0

# KEYS: tracked (zset address -> last failure), counts (hash), blocked (zset address -> until)
# ARGV: address, limit, first block s, longest block s, max tracked
# Returns {failures, blocked until (0: not blocked)}; times from Redis's own clock.
_RECORD_FAILURE = """
local tracked, counts, blocked = KEYS[1], KEYS[2], KEYS[3]
local address = ARGV[1]
local limit, first, cap, max_tracked = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local last = tonumber(redis.call('ZSCORE', tracked, address))
if last and now - last > cap then redis.call('HDEL', counts, address) end
local failures = redis.call('HINCRBY', counts, address, 1)
redis.call('ZADD', tracked, now, address)
local untl = 0
if failures % limit == 0 then
  local seconds = math.min(first * 2 ^ (failures / limit - 1), cap)
  untl = now + seconds
  redis.call('ZADD', blocked, untl, address)
end
local extra = redis.call('ZCARD', tracked) - max_tracked
if extra > 0 then
  local oldest = redis.call('ZRANGE', tracked, 0, extra - 1)
  for _, old in ipairs(oldest) do
    redis.call('HDEL', counts, old)
    redis.call('ZREM', blocked, old)
  end
  redis.call('ZREMRANGEBYRANK', tracked, 0, extra - 1)
end
redis.call('ZREMRANGEBYSCORE', blocked, '-inf', now)
return {failures, tostring(untl)}
"""


@dataclass(frozen=True)
class Block:
    address: str
    until: float  # epoch seconds
    failures: int


class BlockList:
    """Record failures, say whether an address is blocked (cached ≤ 2 s), list and lift blocks."""

    def __init__(self, settings: Settings, commands: redis.Redis) -> None:
        self.settings = settings
        self.redis = commands
        self._record = commands.register_script(_RECORD_FAILURE)
        self._cached: dict[str, float] = {}
        self._cached_at = float("-inf")

    def record_failure(self, address: str) -> tuple[int, float]:
        """Count one failure of ``address``; (its failures, blocked until or 0)."""
        s = self.settings
        failures, until = self._record(
            keys=[AUTH_TRACKED, AUTH_FAILURE_COUNTS, AUTH_BLOCKED],
            args=[client_unit(address), s.auth_max_failures, s.auth_first_block_s, s.auth_block_s,
                  s.auth_max_tracked],
        )
        until_s = float(until)
        if until_s:
            self._cached[client_unit(address)] = until_s
        return int(failures), until_s

    def blocked_until(self, address: str) -> float | None:
        """When the block of ``address`` ends, or None; from a copy at most 2 s old.

        Redis unreachable: the last copy keeps answering (its blocks still end on time).
        """
        now = time.time()
        if time.monotonic() - self._cached_at > CACHE_SECONDS:
            self._cached_at = time.monotonic()  # one request refreshes; the others use the copy meanwhile
            try:
                self.refresh(now)
            except redis.RedisError:
                pass
        until = self._cached.get(client_unit(address))
        return until if until is not None and until > now else None

    def refresh(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        rows = scored_members(self.redis.zrangebyscore(AUTH_BLOCKED, now, "+inf", withscores=True))
        self._cached = dict(rows)
        self._cached_at = time.monotonic()

    def blocks(self) -> list[Block]:
        """Every block in force, soonest to end first."""
        rows = scored_members(self.redis.zrangebyscore(AUTH_BLOCKED, time.time(), "+inf", withscores=True))
        addresses = [a for a, _ in rows]
        counts = cast(list[Any], self.redis.hmget(AUTH_FAILURE_COUNTS, addresses)) if addresses else []
        return [Block(a, score, int(c or 0)) for (a, score), c in zip(rows, counts, strict=True)]

    def unblock(self, address: str) -> bool:
        """Lift the block of ``address`` (IPv6: its /64) and forget its failures; False if none."""
        unit = client_unit(address)
        pipe = self.redis.pipeline()
        pipe.zrem(AUTH_BLOCKED, unit)
        pipe.hdel(AUTH_FAILURE_COUNTS, unit)
        pipe.zrem(AUTH_TRACKED, unit)
        removed = pipe.execute()[0]
        self._cached.pop(unit, None)
        return bool(removed)
