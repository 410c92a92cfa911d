"""Open streams per key and per address, and a token bucket on new streams per address.

Counted in Redis, not per process: several gateway processes serve one key and one address,
and the snapshots the hub reports are up to a report interval old, so summing them would let
a burst of connects spread over workers pass the limit. Each open stream is a member of two
sorted sets (its key's and its address's) scored by the end of its lease; the process's upkeep
loop (gateway/services.py) renews the leases of its streams, so the streams of a process that died without
closing them stop counting once their lease ends. One Lua script checks both counts and the
bucket and takes the place atomically, so concurrent connects on any process cannot overshoot.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import gevent
import gevent.event
import redis

from gateway.errors import HttpError
from shared.client_addresses import client_unit
from shared.config import Settings
from shared.constants import NEW_STREAMS_BUCKET_PREFIX, STREAMS_BY_ADDRESS_PREFIX, STREAMS_BY_KEY_PREFIX

log = logging.getLogger(__name__)

# KEYS: streams of the key, streams of the address, the address's bucket
# ARGV: member, lease s, key limit, address limit, rate per s (0: none), burst
# Returns {0, 0} when taken, else {which limit (1 key, 2 address, 3 rate), seconds to wait}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local member, lease = ARGV[1], tonumber(ARGV[2])
local key_limit, address_limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local rate, burst = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= key_limit then return {1, 0} end
if redis.call('ZCARD', KEYS[2]) >= address_limit then return {2, 0} end
if rate > 0 then
  local b = redis.call('HMGET', KEYS[3], 'tokens', 'at')
  local tokens = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < 1 then return {3, math.ceil((1 - tokens) / rate)} end
  redis.call('HSET', KEYS[3], 'tokens', tostring(tokens - 1), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[3], math.ceil(burst / rate * 1000) + 1000)
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now + lease, member)
  redis.call('PEXPIRE', KEYS[i], math.ceil(lease * 1000))
end
return {0, 0}
"""

LIMIT_NAMES = {1: "SSE_MAX_STREAMS_PER_KEY", 2: "SSE_MAX_STREAMS_PER_ADDRESS", 3: "SSE_NEW_STREAMS_PER_ADDRESS_RATE"}
FULL_RETRY_AFTER_S = 10  # a full key or address: streams end at no predictable time


@dataclass(frozen=True)
class Place:
    """One open stream's place in the counts of its key and its address."""

    member: str
    key_set: str
    address_set: str


class StreamLimits:
    def __init__(self, settings: Settings, commands: redis.Redis) -> None:
        self.settings = settings
        self.redis = commands
        self.lease_s = max(15.0, 5 * settings.report_interval_s)
        self._acquire = commands.register_script(_ACQUIRE)
        self._held: dict[str, Place] = {}
        self._released: list[Place] = []
        self._asked: list[tuple[list[str], list[str | float], gevent.event.AsyncResult]] = []
        self._worker: gevent.Greenlet | None = None

    def acquire(self, key_fingerprint: str, address: str) -> Place | None:
        """A place for a new stream, or HttpError 429 naming the limit it is past.

        None when Redis cannot be asked: streams keep working through an outage (the limits
        then hold per process only through SSE_MAX_CONNECTIONS).
        """
        s = self.settings
        unit = client_unit(address)
        place = Place(uuid.uuid4().hex, STREAMS_BY_KEY_PREFIX + key_fingerprint, STREAMS_BY_ADDRESS_PREFIX + unit)
        keys = [place.key_set, place.address_set, NEW_STREAMS_BUCKET_PREFIX + unit]
        args: list[str | float] = [place.member, self.lease_s, s.max_streams_per_key, s.max_streams_per_address,
                s.new_streams_rate, s.new_streams_burst]
        answer: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self._asked.append((keys, args, answer))
        self._wake_worker()
        outcome = answer.get()
        if isinstance(outcome, Exception):
            log.warning("stream limits not checked (Redis: %s)", outcome.__class__.__name__)
            return None
        which, wait = outcome
        if which:
            limit = LIMIT_NAMES[int(which)]
            if int(which) == 3:
                message = f"too many new streams from this address (over {limit}={s.new_streams_rate}/s)"
                retry = max(1, int(wait))
            else:
                value = s.max_streams_per_key if int(which) == 1 else s.max_streams_per_address
                message = f"too many open streams for this {'key' if int(which) == 1 else 'address'} ({limit}={value})"
                retry = FULL_RETRY_AFTER_S
            raise HttpError(429, message, headers={"Retry-After": str(retry)}, limit=limit)
        self._held[place.member] = place
        return place

    def release(self, place: Place | None) -> None:
        """Give the place back (soon, with the others let go meanwhile)."""
        if place is None or self._held.pop(place.member, None) is None:
            return
        self._released.append(place)
        self._wake_worker()

    def _wake_worker(self) -> None:
        if self._worker is None or self._worker.dead:
            self._worker = gevent.spawn(self._work)

    def _work(self) -> None:
        """Send what connects and closes asked for meanwhile in one pipeline, until nothing is left.

        Many streams start or end at once (a deploy, a proxy restart): one greenlet, so one Redis
        connection and one round trip per batch, rather than one connection each.
        """
        while self._asked or self._released:
            asked, self._asked = self._asked, []
            released, self._released = self._released, []
            try:
                pipe = self.redis.pipeline(transaction=False)
                for place in released:
                    pipe.zrem(place.key_set, place.member)
                    pipe.zrem(place.address_set, place.member)
                for keys, args, _answer in asked:
                    self._acquire(keys=keys, args=args, client=pipe)
                results = pipe.execute(raise_on_error=False)
            except Exception as exc:  # Redis, or anything else: no connect may wait for ever
                if not isinstance(exc, redis.RedisError):
                    log.exception("stream limits batch failed")
                results = [exc] * (2 * len(released) + len(asked))
            for (_keys, _args, answer), result in zip(asked, results[2 * len(released):], strict=True):
                answer.set(result)

    def renew(self) -> None:
        """Extend the leases of this process's open streams (every report interval, by the upkeep loop)."""
        if not self._held:
            return
        ends: dict[str, dict[str, float]] = {}
        end = float(self.redis.time()[0]) + self.lease_s
        for place in list(self._held.values()):
            ends.setdefault(place.key_set, {})[place.member] = end
            ends.setdefault(place.address_set, {})[place.member] = end
        pipe = self.redis.pipeline(transaction=False)
        for name, members in ends.items():
            pipe.zadd(name, dict(members), gt=True)
            pipe.expire(name, int(self.lease_s) + 1)
        pipe.execute()
