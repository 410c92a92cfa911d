"""Where the notifier keeps dead-lettered notifications and its per-target queues, in Redis.

Shared by the notifier (which writes them) and the gateway's admin routes (which list and
re-queue them).
"""

from __future__ import annotations

import json
from typing import Any

import redis

from shared.constants import KEY_PREFIX

DEAD_NOTIFICATIONS = KEY_PREFIX + "notify:dead"  # hash: dead id -> JSON record
QUEUE_PREFIX = KEY_PREFIX + "notify:queue:"  # + target: notifications to send (retries, escalations)


def queue_key(target: str) -> str:
    return QUEUE_PREFIX + target


def list_dead(client: redis.Redis) -> list[dict[str, Any]]:
    """Every dead-lettered notification (target, error, attempts, the notification), oldest first."""
    records = [json.loads(v) for v in client.hvals(DEAD_NOTIFICATIONS)]
    return sorted(records, key=lambda r: r["at"])


_REQUEUE = """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return nil end
redis.call('RPUSH', ARGV[2] .. cjson.decode(record)['target'], ARGV[3])
redis.call('HDEL', KEYS[1], ARGV[1])
return record
"""


def requeue_dead(client: redis.Redis, dead_id: str) -> dict[str, Any] | None:
    """Move one dead notification back to its target's queue; None if there is no such id."""
    raw = client.hget(DEAD_NOTIFICATIONS, dead_id)
    if raw is None:
        return None
    notification = json.dumps(json.loads(raw)["notification"])
    # Checked again inside the script: of two concurrent retries, only one re-queues it.
    moved = client.eval(_REQUEUE, 1, DEAD_NOTIFICATIONS, dead_id, QUEUE_PREFIX, notification)
    return json.loads(moved) if moved is not None else None
