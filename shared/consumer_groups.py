"""The Redis keys of consumer groups, and the status of every group on the history stream."""

from __future__ import annotations

from typing import Any

import redis

from shared.constants import HISTORY_STREAM, KEY_PREFIX
from shared.redis_replies import fields as decoded_fields
from shared.redis_replies import text

DEAD_PREFIX = KEY_PREFIX + "dead:"  # + group, a list of JSON records
CONSUMER_STATS_PREFIX = KEY_PREFIX + "consumer:"  # + group, a hash of counters
GROUPS_KEY = KEY_PREFIX + "consumer-groups"  # set of group names, for the status view


def dead_key(group: str) -> str:
    return DEAD_PREFIX + group


def group_status(client: redis.Redis) -> list[dict[str, Any]]:
    """Each consumer group of the history: lag, pending, dead-lettered, lost and consumers."""
    try:
        groups = client.xinfo_groups(HISTORY_STREAM)
    except redis.ResponseError:
        return []
    out = []
    for g in groups:
        name = text(g["name"])
        counters = {k: int(v) for k, v in decoded_fields(client.hgetall(CONSUMER_STATS_PREFIX + name)).items()}
        lag = g.get("lag")
        out.append({"group": name, "consumers": int(g["consumers"]), "pending": int(g["pending"]),
                    "lag": int(lag) if lag is not None else None, "lastDeliveredId": text(g["last-delivered-id"]),
                    "dead": int(client.llen(dead_key(name))), "lost": counters.get("lost", 0),
                    "acked": counters.get("acked", 0)})
    return out
