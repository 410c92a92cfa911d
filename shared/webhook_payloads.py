"""Reading eBay and Joom order notifications (the seed system's shapes) into one ``OrderNotice``.

Both sides use it: the gateway to answer 400 naming a missing field before storing anything,
the webhook task to apply the notice. Pure functions over parsed JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

PROVIDERS = ("ebay", "joom")
JOOM_EVENTS = ("order.created", "order.status_changed", "order.paid", "order.cancelled")

_JOOM_STATUS = {
    "pending": "PENDING", "created": "PENDING", "approved": "PAID", "paid": "PAID",
    "shipped": "SHIPPED", "delivered": "DELIVERED", "cancelled": "CANCELLED", "canceled": "CANCELLED",
    "refunded": "REFUNDED",
}


class PayloadError(ValueError):
    """A notification lacks a field or has one of the wrong kind; ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


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


def _get(obj: Any, path: str, required: bool = True) -> Any:
    value = obj
    walked = []
    for part in path.split("."):
        walked.append(part)
        if not isinstance(value, dict):
            raise PayloadError(".".join(walked[:-1]) or "body", "must be a JSON object")
        value = value.get(part)
        if value is None:
            if required:
                raise PayloadError(path, "is required")
            return None
    return value


def _text(obj: Any, path: str, required: bool = True) -> str | None:
    value = _get(obj, path, required)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise PayloadError(path, f"must be a non-empty string, got {value!r}")
    return str(value)


def _money(obj: Any, path: str, required: bool = True) -> Decimal | None:
    value = _get(obj, path, required)
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PayloadError(path, f"must be an amount, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise PayloadError(path, f"must be a non-negative amount, got {value!r}")
    return amount.quantize(Decimal("0.01"))


def _time(obj: Any, path: str) -> datetime | None:
    value = _get(obj, path, required=False)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(path, f"must be an ISO 8601 time, got {value!r}") from None


def _currency(obj: Any, path: str, required: bool = True) -> str | None:
    value = _text(obj, path, required)
    if value is not None and (len(value) != 3 or not value.isalpha()):
        raise PayloadError(path, f"must be a 3-letter currency code, got {value!r}")
    return value.upper() if value else None


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
                price = _money(item, price_path, required=False)
            except PayloadError as exc:
                raise PayloadError(f"{where}.{exc.field}", str(exc).split(": ", 1)[1]) from None
        lines.append(NoticeLine(sku=str(item.get(sku_key) or ""), title=str(item.get("title") or ""),
                                quantity=quantity, price=price))
    return tuple(lines)


def parse_joom(body: Any) -> OrderNotice:
    event = _text(body, "event")
    if event not in JOOM_EVENTS:
        raise PayloadError("event", f"must be one of {', '.join(JOOM_EVENTS)}, got {event!r}")
    order = _get(body, "order")
    if not isinstance(order, dict):
        raise PayloadError("order", "must be a JSON object")
    creating = event == "order.created"
    if event == "order.paid":
        status: str | None = "PAID"
    elif event == "order.cancelled":
        status = "CANCELLED"
    else:
        raw = _text(body, "order.status")
        status = _JOOM_STATUS.get(str(raw).lower())
        if status is None:
            raise PayloadError("order.status", f"unknown status {raw!r} (known: {', '.join(sorted(_JOOM_STATUS))})")
    return OrderNotice(
        marketplace="JOOM", topic=event, order_id=_text(body, "order.id") or "", status=status,
        total=_money(body, "order.total", required=creating),
        currency=_currency(body, "order.currency", required=creating),
        buyer_name=str(order.get("buyer_name") or ""), buyer_email=str(order.get("buyer_email") or ""),
        subtotal=_money(body, "order.subtotal", required=False),
        shipping_cost=_money(body, "order.shipping_cost", required=False),
        tax=_money(body, "order.tax", required=False),
        ordered_at=_time(body, "order.created_at"),
        lines=_lines(order.get("items"), "order.items", "sku", "price"),
    )


def ebay_status(data: dict[str, Any], topic: str) -> str:
    if "CANCEL" in topic.upper() or data.get("cancelStatus", {}).get("cancelState") == "CANCELED":
        return "CANCELLED"
    fulfillment = str(data.get("orderFulfillmentStatus") or "").upper()
    if fulfillment == "FULFILLED":
        return "SHIPPED"
    if str(data.get("orderPaymentStatus") or "").upper() == "PAID":
        return "PAID"
    return "PENDING"


def parse_ebay(body: Any) -> OrderNotice:
    topic = _text(body, "metadata.topic") or ""
    _text(body, "metadata.notificationId")
    data = _get(body, "notification.data")
    if not isinstance(data, dict):
        raise PayloadError("notification.data", "must be a JSON object")
    creating = topic.upper().endswith("CREATED")
    return OrderNotice(
        marketplace="EBAY", topic=topic, order_id=_text(body, "notification.data.orderId") or "",
        status=ebay_status(data, topic),
        total=_money(body, "notification.data.pricingSummary.total.value", required=creating),
        currency=_currency(body, "notification.data.pricingSummary.total.currency", required=creating),
        buyer_name=str((data.get("buyer") or {}).get("username") or ""),
        subtotal=_money(body, "notification.data.pricingSummary.priceSubtotal.value", required=False),
        shipping_cost=_money(body, "notification.data.pricingSummary.deliveryCost.value", required=False),
        tax=_money(body, "notification.data.pricingSummary.tax.value", required=False),
        ordered_at=_time(body, "notification.data.creationDate"),
        lines=_lines(data.get("lineItems"), "notification.data.lineItems", "sku", "lineItemCost.value"),
    )


def is_order_topic(provider: str, topic: str) -> bool:
    """eBay sends many topics; only order topics become orders (others are stored and ignored)."""
    return provider == "joom" or "ORDER" in topic.upper()


def parse_notice(provider: str, body: Any) -> OrderNotice | None:
    """The order notice in ``body`` (None for a topic that is not about orders).

    PayloadError names the first missing or malformed field.
    """
    if not isinstance(body, dict):
        raise PayloadError("body", "must be a JSON object")
    if provider == "joom":
        return parse_joom(body)
    if provider == "ebay":
        topic = _text(body, "metadata.topic") or ""
        _text(body, "metadata.notificationId")
        return parse_ebay(body) if is_order_topic(provider, topic) else None
    raise PayloadError("provider", f"unknown provider {provider!r}")
