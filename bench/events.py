"""The events every system carries, so that each one writes messages of the same shape and size."""

from __future__ import annotations

import json
import time

TYPES = ("INVENTORY_CHANGE", "ORDER_RECEIVED", "PRICE_CHANGE", "LISTING_UPDATE")
CHANNEL_OF = {
    "INVENTORY_CHANGE": "inventory",
    "ORDER_RECEIVED": "orders",
    "PRICE_CHANGE": "pricing",
    "LISTING_UPDATE": "listings",
}


def event_dict(event_type: str, n: int) -> dict:
    """A realistic small event (the price of one listing changed); its payload id never looks like a bus id."""
    return {
        "type": event_type,
        "payload": {
            "id": f"listing-{n}",
            "action": "updated",
            "data": {"sku": f"SKU-{n:07d}", "price": 1000 + n % 5000, "currency": "JPY", "marketplace": "ebay"},
        },
        "timestamp": iso_now(),
    }


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def bus_id(now_ms: int, seq: int) -> str:
    """An id in the bus's ``<ms>-<seq>`` form: the load client reads the publish time from it."""
    return f"{now_ms}-{seq}"


def batch_json(event_type: str, events_with_ids: list[str]) -> str:
    """The gateway's message data: ``{"type","count","events":[...]}`` with events as published."""
    return '{"type":"' + event_type + '","count":' + str(len(events_with_ids)) + ',"events":[' + ",".join(
        events_with_ids) + "]}"


def event_json_with_id(event_type: str, n: int, sid: str) -> str:
    body = json.dumps(event_dict(event_type, n), separators=(",", ":"))
    return '{"id":"' + sid + '",' + body[1:]
