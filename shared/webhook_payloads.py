"""Reading eBay and Joom order notifications (the shapes those marketplaces send) into one ``OrderNotice``.

Both sides use it: the gateway to answer 400 naming a missing field before storing anything,
the webhook task to apply the notice. Pure functions over parsed JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

PROVIDERS = ("ebay", "joom")
# NUMERIC(12, 2) holds amounts below 10^10; a larger one is refused here, not by the database.
MAX_AMOUNT = Decimal("9999999999.99")
# Lengths of the columns the fields are stored in.
MAX_ID, MAX_NAME, MAX_SKU, MAX_TITLE = 128, 256, 64, 512
MAX_NESTING = 32
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


def _text(obj: Any, path: str, required: bool = True, max_length: int = MAX_ID) -> str | None:
    value = _get(obj, path, required)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise PayloadError(path, f"must be a non-empty string, got {_short(value)}")
    if len(str(value)) > max_length:
        raise PayloadError(path, f"must be at most {max_length} characters, got {len(str(value))}")
    return str(value)


def _optional_text(obj: Any, path: str, max_length: int) -> str:
    """A free-text field that may be absent or empty (a buyer's name, a line's title)."""
    value = _get(obj, path, required=False)
    if value is None or value == "":
        return ""
    return _text(obj, path, max_length=max_length) or ""


def _object(obj: Any, path: str) -> dict[str, Any]:
    """An optional nested object: absent is {}, anything but an object is refused."""
    value = _get(obj, path, required=False)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(path, f"must be a JSON object, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in parsed JSON (iterative: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _money(obj: Any, path: str, required: bool = True) -> Decimal | None:
    value = _get(obj, path, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PayloadError(path, f"must be an amount, got {_short(value)}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PayloadError(path, f"must be an amount, got {_short(value)}") from None
    if not amount.is_finite() or amount < 0:
        raise PayloadError(path, f"must be a non-negative amount, got {_short(value)}")
    if amount > MAX_AMOUNT:
        raise PayloadError(path, f"must be at most {MAX_AMOUNT}, got {_short(value)}")
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
        try:
            sku = _optional_text(item, sku_key, MAX_SKU)
            title = _optional_text(item, "title", MAX_TITLE)
        except PayloadError as exc:
            raise PayloadError(f"{where}.{exc.field}", str(exc).split(": ", 1)[1]) from None
        lines.append(NoticeLine(sku=sku, title=title, quantity=quantity, price=price))
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
        buyer_name=_optional_text(body, "order.buyer_name", MAX_NAME),
        buyer_email=_optional_text(body, "order.buyer_email", MAX_NAME),
        subtotal=_money(body, "order.subtotal", required=False),
        shipping_cost=_money(body, "order.shipping_cost", required=False),
        tax=_money(body, "order.tax", required=False),
        ordered_at=_time(body, "order.created_at"),
        lines=_lines(order.get("items"), "order.items", "sku", "price"),
    )


def ebay_status(data: dict[str, Any], topic: str) -> str:
    cancel = _object(data, "cancelStatus")
    if "CANCEL" in topic.upper() or cancel.get("cancelState") == "CANCELED":
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
    _object(body, "notification.data.cancelStatus")  # named with its full path when it is not an object
    return OrderNotice(
        marketplace="EBAY", topic=topic, order_id=_text(body, "notification.data.orderId") or "",
        status=ebay_status(data, topic),
        total=_money(body, "notification.data.pricingSummary.total.value", required=creating),
        currency=_currency(body, "notification.data.pricingSummary.total.currency", required=creating),
        buyer_name=_optional_text(body, "notification.data.buyer.username", MAX_NAME),
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
    if nesting_depth(body) > MAX_NESTING:
        raise PayloadError("body", f"nests deeper than {MAX_NESTING} levels")
    if provider == "joom":
        return parse_joom(body)
    if provider == "ebay":
        topic = _text(body, "metadata.topic") or ""
        _text(body, "metadata.notificationId")
        return parse_ebay(body) if is_order_topic(provider, topic) else None
    raise PayloadError("provider", f"unknown provider {provider!r}")
