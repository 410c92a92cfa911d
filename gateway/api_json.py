"""The JSON shapes of the catalogue, listings, price changes and orders, as the ``/api`` routes answer them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.models import Listing, Order, PriceHistory, Product
from shared.timestamps import utc_iso


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _time(value: datetime | None) -> str | None:
    return None if value is None else utc_iso(value, "seconds")


def product_json(p: Product) -> dict[str, Any]:
    return {
        "id": p.id, "title": p.title, "source": p.source.value, "sourceItemId": p.source_item_id,
        "sourceUrl": p.source_url, "purchasePriceJpy": p.purchase_price_jpy, "weightGrams": p.weight_grams,
        "isAvailable": p.is_available, "status": p.status.value, "lastCheckedAt": _time(p.last_checked_at),
        "updatedAt": _time(p.updated_at),
    }


def inventory_json(p: Product) -> dict[str, Any]:
    return {"productId": p.id, "title": p.title, "isAvailable": p.is_available, "status": p.status.value,
            "lastCheckedAt": _time(p.last_checked_at), "updatedAt": _time(p.updated_at)}


def listing_json(li: Listing) -> dict[str, Any]:
    return {
        "id": li.id, "productId": li.product_id, "marketplace": li.marketplace.value, "sku": li.sku,
        "marketplaceListingId": li.marketplace_listing_id, "price": _money(li.listing_price),
        "shippingCost": _money(li.shipping_cost), "currency": li.currency, "status": li.status.value,
        "errorMessage": li.error_message, "listedAt": _time(li.listed_at), "updatedAt": _time(li.updated_at),
    }


def price_change_json(h: PriceHistory) -> dict[str, Any]:
    return {"id": h.id, "listingId": h.listing_id, "oldPrice": _money(h.old_price), "newPrice": _money(h.new_price),
            "currency": h.currency, "reason": h.reason, "createdAt": _time(h.created_at)}


def order_json(o: Order, with_lines: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": o.id, "marketplace": o.marketplace.value, "marketplaceOrderId": o.marketplace_order_id,
        "buyerName": o.buyer_name, "subtotal": _money(o.subtotal), "shippingCost": _money(o.shipping_cost),
        "tax": _money(o.tax), "total": _money(o.total), "currency": o.currency, "status": o.status.value,
        "oversold": o.oversold, "orderedAt": _time(o.ordered_at), "updatedAt": _time(o.updated_at),
        "acknowledgedAt": _time(o.acknowledged_at),
    }
    if with_lines:
        body["lines"] = [
            {"id": line.id, "listingId": line.listing_id, "sku": line.sku, "title": line.title,
             "quantity": line.quantity, "unitPrice": _money(line.unit_price)}
            for line in o.lines
        ]
    return body
