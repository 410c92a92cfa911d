"""Signed sample order deliveries, in the shapes eBay and Joom send (``rakuda webhook send``, tests, bench)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import click

from shared.config import Settings
from shared.webhook_signatures import sign_ebay, sign_joom


def sample_delivery(provider: str, settings: Settings, order_id: str) -> tuple[bytes, dict[str, str]]:
    """A signed sample delivery, in the shape the marketplace sends, for ``provider``."""
    if provider == "joom":
        if not settings.joom_webhook_secret:
            raise click.ClickException("JOOM_WEBHOOK_SECRET is not set: the gateway would refuse the delivery")
        body = copy.deepcopy(JOOM_SAMPLE)
        body["order"]["id"] = order_id
        raw = json.dumps(body).encode()
        signature = sign_joom(settings.joom_webhook_secret, raw)
        return raw, {"Content-Type": "application/json", "X-Joom-Signature": signature,
                     "X-Joom-Delivery-Id": uuid.uuid4().hex}
    if not settings.ebay_webhook_secret:
        raise click.ClickException("EBAY_WEBHOOK_SECRET is not set: the gateway would refuse the delivery")
    body = copy.deepcopy(EBAY_SAMPLE)
    body["metadata"]["notificationId"] = uuid.uuid4().hex
    body["notification"]["data"]["orderId"] = order_id
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()))
    return raw, {"Content-Type": "application/json", "X-EBAY-TIMESTAMP": timestamp,
                 "X-EBAY-SIGNATURE": sign_ebay(settings.ebay_webhook_secret, timestamp, raw)}


JOOM_SAMPLE: dict[str, Any] = {
    "event": "order.created",
    "order": {"id": "JO-1001", "status": "pending", "buyer_name": "Ann", "buyer_email": "ann@example.com",
              "shipping_address": {"address_line_1": "1 Main St", "city": "Austin", "state": "TX",
                                   "postal_code": "78701", "country_code": "US"},
              "subtotal": "41.20", "shipping_cost": "9.00", "tax": "0", "total": "50.20", "currency": "USD",
              "created_at": "2026-11-28T10:00:00Z",
              "items": [{"product_id": "jm-77", "sku": "ALS-1a2b3c4d", "title": "Seiko watch", "quantity": 1,
                         "price": "41.20"}]},
}
EBAY_SAMPLE: dict[str, Any] = {
    "metadata": {"topic": "MARKETPLACE_ORDER_CREATED", "notificationId": "n-5001"},
    "notification": {"data": {
        "orderId": "12-34567-89012", "orderFulfillmentStatus": "NOT_STARTED", "orderPaymentStatus": "PAID",
        "creationDate": "2026-11-28T10:00:00Z", "buyer": {"username": "bob"},
        "pricingSummary": {"total": {"value": "88.00", "currency": "USD"}},
        "lineItems": [{"legacyItemId": "v1|1234|0", "sku": "ALS-9f8e7d6c", "title": "Nikon lens", "quantity": 1}]}},
}
