"""What one publish writes to Redis: the Lua script, its arguments, and the keys it touches.

The script runs atomically, for each event: ``XADD`` to the capped history stream (the entry
id becomes the event's bus id), ``PUBLISH`` on the event's channel with that id spliced in,
and a ``published:<TYPE>`` count in the day's stats hash and in the all-time totals. A channel
nobody subscribes to (no subscriber of its own, no pattern subscriber) is not sent the PUBLISH:
it would reach no one, and building each message costs Redis about a third of the script's time.
Nobody can subscribe while the script runs, so this changes nothing a subscriber sees.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import redis

from shared.config import Settings
from shared.constants import HISTORY_EPOCH, HISTORY_STREAM, METRICS_TOTALS, STATS_DAY_PREFIX
from shared.timestamps import utc_day

PUBLISH_SCRIPT = """
local maxlen, max_age_ms, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
redis.call('SET', KEYS[3], ARGV[4], 'NX')
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids, counts, heard = {}, {}, {}
local patterns = redis.call('PUBSUB', 'NUMPAT') > 0
for i = 5, #ARGV, 3 do
  local channel, etype, body = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 't', etype, 'e', body)
  if heard[channel] == nil then
    heard[channel] = patterns or redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0
  end
  if heard[channel] then
    redis.call('PUBLISH', channel, '{"id":"' .. id .. '",' .. string.sub(body, 2))
  end
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
    """The stats hash of ``day`` (UTC; today by default)."""
    return STATS_DAY_PREFIX + utc_day(day)


def script_keys() -> list[str]:
    return [HISTORY_STREAM, stats_day_key(), HISTORY_EPOCH, METRICS_TOTALS]


def script_header(settings: Settings) -> list[Any]:
    """The arguments before the events: history bounds, stats retention, a candidate epoch."""
    return [settings.history_max_events, settings.history_max_age_s * 1000,
            settings.stats_retention_days * 86400, new_epoch()]
