"""Reading eBay and Joom order notifications (the shapes those marketplaces send) into one ``OrderNotice``.

Both sides use it: the gateway to answer 400 naming a missing field before storing anything,
the webhook task to apply the notice. Pure functions over parsed JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.json_fields import (
    PayloadError,
    currency_at,
    money_at,
    nesting_depth,
    object_at,
    optional_text_at,
    text_at,
    time_at,
    value_at,
)

__all__ = ["PROVIDERS", "NoticeLine", "OrderNotice", "PayloadError", "is_order_topic", "parse_notice"]

PROVIDERS = ("ebay", "joom")
# Lengths of the columns the fields are stored in.
MAX_NAME, MAX_SKU, MAX_TITLE = 256, 64, 512
MAX_NESTING = 32
JOOM_EVENTS = ("order.created", "order.status_changed", "order.paid", "order.cancelled")

_JOOM_STATUS = {
    "pending": "PENDING", "created": "PENDING", "approved": "PAID", "paid": "PAID",
    "shipped": "SHIPPED", "delivered": "DELIVERED", "cancelled": "CANCELLED", "canceled": "CANCELLED",
    "refunded": "REFUNDED",
}


@dataclass(frozen=True)
class NoticeLine:
    sku: str
    title: str
    quantity: int
    price: Decimal | None


@dataclass(frozen=True)
class OrderNotice:
    """What a notification says about an order. ``status`` None: the notice does not change it."""

    marketplace: str  # EBAY | JOOM
    topic: str
    order_id: str
    status: str | None
    total: Decimal | None
    currency: str | None
    buyer_name: str = ""
    buyer_email: str = ""
    subtotal: Decimal | None = None
    shipping_cost: Decimal | None = None
    tax: Decimal | None = None
    ordered_at: datetime | None = None
    lines: tuple[NoticeLine, ...] = field(default_factory=tuple)


def _lines(items: Any, path: str, sku_key: str, price_path: str | None) -> tuple[NoticeLine, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise PayloadError(path, "must be a list")
    lines = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise PayloadError(where, "must be a JSON object")
        quantity = item.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise PayloadError(f"{where}.quantity", f"must be a positive integer, got {quantity!r}")
        price = None
        if price_path is not None:
            try:
                price = money_at(item, price_path, required=False)
            except PayloadError as exc:
                raise PayloadError(f"{where}.{exc.field}", str(exc).split(": ", 1)[1]) from None
        try:
            sku = optional_text_at(item, sku_key, MAX_SKU)
            title = optional_text_at(item, "title", MAX_TITLE)
        except PayloadError as exc:
            raise PayloadError(f"{where}.{exc.field}", str(exc).split(": ", 1)[1]) from None
        lines.append(NoticeLine(sku=sku, title=title, quantity=quantity, price=price))
    return tuple(lines)


@dataclass(frozen=True)
class NoticePaths:
    """Where one marketplace puts each field of an order notice: dotted paths into its body."""

    order_id: str
    total: str
    currency: str
    buyer_name: str
    buyer_email: str | None  # None: this marketplace does not send it
    subtotal: str
    shipping_cost: str
    tax: str
    ordered_at: str
    lines: str
    line_price: str  # within a line


JOOM_PATHS = NoticePaths(
    order_id="order.id", total="order.total", currency="order.currency", buyer_name="order.buyer_name",
    buyer_email="order.buyer_email", subtotal="order.subtotal", shipping_cost="order.shipping_cost",
    tax="order.tax", ordered_at="order.created_at", lines="order.items", line_price="price")
_EBAY = "notification.data."
EBAY_PATHS = NoticePaths(
    order_id=_EBAY + "orderId", total=_EBAY + "pricingSummary.total.value",
    currency=_EBAY + "pricingSummary.total.currency", buyer_name=_EBAY + "buyer.username", buyer_email=None,
    subtotal=_EBAY + "pricingSummary.priceSubtotal.value", shipping_cost=_EBAY + "pricingSummary.deliveryCost.value",
    tax=_EBAY + "pricingSummary.tax.value", ordered_at=_EBAY + "creationDate", lines=_EBAY + "lineItems",
    line_price="lineItemCost.value")


def read_notice(body: Any, paths: NoticePaths, marketplace: str, topic: str, status: str | None,
                creating: bool) -> OrderNotice:
    """The notice's fields read from ``body`` at ``paths``, in this order (the first bad one is named);
    total and currency are required when the notice creates the order."""
    return OrderNotice(
        marketplace=marketplace, topic=topic, order_id=text_at(body, paths.order_id) or "", status=status,
        total=money_at(body, paths.total, required=creating),
        currency=currency_at(body, paths.currency, required=creating),
        buyer_name=optional_text_at(body, paths.buyer_name, MAX_NAME),
        buyer_email=optional_text_at(body, paths.buyer_email, MAX_NAME) if paths.buyer_email else "",
        subtotal=money_at(body, paths.subtotal, required=False),
        shipping_cost=money_at(body, paths.shipping_cost, required=False),
        tax=money_at(body, paths.tax, required=False),
        ordered_at=time_at(body, paths.ordered_at),
        lines=_lines(value_at(body, paths.lines, required=False), paths.lines, "sku", paths.line_price),
    )


def parse_joom(body: Any) -> OrderNotice:
    event = text_at(body, "event")
    if event not in JOOM_EVENTS:
        raise PayloadError("event", f"must be one of {', '.join(JOOM_EVENTS)}, got {event!r}")
    order = value_at(body, "order")
    if not isinstance(order, dict):
        raise PayloadError("order", "must be a JSON object")
    creating = event == "order.created"
    if event == "order.paid":
        status: str | None = "PAID"
    elif event == "order.cancelled":
        status = "CANCELLED"
    else:
        raw = text_at(body, "order.status")
        status = _JOOM_STATUS.get(str(raw).lower())
        if status is None:
            raise PayloadError("order.status", f"unknown status {raw!r} (known: {', '.join(sorted(_JOOM_STATUS))})")
    return read_notice(body, JOOM_PATHS, "JOOM", event, status, creating)


def ebay_status(data: dict[str, Any], topic: str) -> str:
    cancel = object_at(data, "cancelStatus")
    if "CANCEL" in topic.upper() or cancel.get("cancelState") == "CANCELED":
        return "CANCELLED"
    fulfillment = str(data.get("orderFulfillmentStatus") or "").upper()
    if fulfillment == "FULFILLED":
        return "SHIPPED"
    if str(data.get("orderPaymentStatus") or "").upper() == "PAID":
        return "PAID"
    return "PENDING"


def parse_ebay(body: Any) -> OrderNotice:
    topic = text_at(body, "metadata.topic") or ""
    text_at(body, "metadata.notificationId")
    data = value_at(body, "notification.data")
    if not isinstance(data, dict):
        raise PayloadError("notification.data", "must be a JSON object")
    creating = topic.upper().endswith("CREATED")
    object_at(body, "notification.data.cancelStatus")  # named with its full path when it is not an object
    return read_notice(body, EBAY_PATHS, "EBAY", topic, ebay_status(data, topic), creating)


def is_order_topic(provider: str, topic: str) -> bool:
    """eBay sends many topics; only order topics become orders (others are stored and ignored)."""
    return provider == "joom" or "ORDER" in topic.upper()


def parse_notice(provider: str, body: Any) -> OrderNotice | None:
    """The order notice in ``body`` (None for a topic that is not about orders).

    PayloadError names the first missing or malformed field.
    """
    if not isinstance(body, dict):
        raise PayloadError("body", "must be a JSON object")
    if nesting_depth(body) > MAX_NESTING:
        raise PayloadError("body", f"nests deeper than {MAX_NESTING} levels")
    if provider == "joom":
        return parse_joom(body)
    if provider == "ebay":
        topic = text_at(body, "metadata.topic") or ""
        text_at(body, "metadata.notificationId")
        return parse_ebay(body) if is_order_topic(provider, topic) else None
    raise PayloadError("provider", f"unknown provider {provider!r}")
