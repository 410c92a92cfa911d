"""Operator acknowledgement of orders, as the notifier sees it in Redis.

The gateway's ack route records the acknowledgement here (and in the database); the notifier's
escalation reads it. An order noted for escalation sits in a sorted set until it is due.
"""

from __future__ import annotations

import redis

from shared.constants import KEY_PREFIX

ESCALATION_DUE = KEY_PREFIX + "notify:escalation:due"  # sorted set: order id -> due time
ESCALATION_EVENTS = KEY_PREFIX + "notify:escalation:events"  # hash: order id -> event JSON
ORDER_ACK_PREFIX = KEY_PREFIX + "order-ack:"  # + order id: set once an operator acknowledged it
ACK_TTL_S = 30 * 86400


def mark_acknowledged(client: redis.Redis, order_id: str, ttl_s: int = ACK_TTL_S) -> None:
    """No escalation for this order, now or when the notifier sees it later."""
    pipe = client.pipeline()
    pipe.set(ORDER_ACK_PREFIX + order_id, "1", ex=ttl_s)
    pipe.zrem(ESCALATION_DUE, order_id)
    pipe.hdel(ESCALATION_EVENTS, order_id)
    pipe.execute()


def is_acknowledged(client: redis.Redis, order_id: str) -> bool:
    return bool(client.exists(ORDER_ACK_PREFIX + order_id))
