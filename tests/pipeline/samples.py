"""Sample eBay and Joom deliveries, and how to sign them."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from shared.webhook_signatures import sign_ebay, sign_joom
from tasks.sample_webhooks import EBAY_SAMPLE, JOOM_SAMPLE

JOOM_ORDER_CREATED: dict[str, Any] = JOOM_SAMPLE
EBAY_ORDER_CREATED: dict[str, Any] = EBAY_SAMPLE


def joom(event: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(event or JOOM_ORDER_CREATED)
    body["order"].update(changes)
    return body


def joom_headers(raw: bytes, secret: str, delivery_id: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Joom-Signature": sign_joom(secret, raw)}
    if delivery_id:
        headers["X-Joom-Delivery-Id"] = delivery_id
    return headers


def ebay_headers(raw: bytes, secret: str, timestamp: float | None = None) -> dict[str, str]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    return {"Content-Type": "application/json", "X-EBAY-TIMESTAMP": ts, "X-EBAY-SIGNATURE": sign_ebay(secret, ts, raw)}


def encode(body: Any) -> bytes:
    return json.dumps(body, indent=1).encode()  # formatting differs from a re-serialisation on purpose
