"""``/api``: the catalogue, listings, pricing and orders as JSON, for the dashboard's queries.

Every route needs an API key (like ``/api/realtime``). Lists are paginated with ``limit``
(1..200, default 50) and ``offset`` and answer ``{"items", "total", "limit", "offset", "next"}``;
a bad parameter is a 400 that names it, an unknown id a 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import Select, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload

from gateway.auth import require_api_key
from gateway.errors import HttpError, render
from gateway.params import MAX_INT, MAX_ROW_ID, ascii_int
from shared.database import Database
from shared.models import Listing, ListingStatus, Marketplace, Order, OrderStatus, PriceHistory, Product
from shared.timestamps import utc_iso

log = logging.getLogger(__name__)

api_bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def get_database() -> Database:
    """This app's database, opened on first use from DATABASE_URL (one engine per process)."""
    database: Database | None = current_app.extensions.get("rakuda_db")
    if database is None:
        database = Database().initialize(current_app.config["RAKUDA_SETTINGS"].database_url)
        current_app.extensions["rakuda_db"] = database
    return database


@api_bp.before_request
@require_api_key
def _authenticate() -> None:
    """Every route of this blueprint needs a key."""


@api_bp.errorhandler(DBAPIError)
def database_failure(exc: DBAPIError) -> Response:
    """A database that is down or has no tables is a 503 that says so (and is logged), not a bare 500."""
    log.exception("database error on %s %s", request.method, request.path)
    missing_table = getattr(exc.orig, "pgcode", None) == "42P01" or "no such table" in str(exc.orig)
    hint = ": it has no tables yet (run `rakuda db upgrade`)" if missing_table else " or unreachable"
    return render(HttpError(503, f"the database is not ready{hint}"))


# --- parameters ---
def int_arg(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = ascii_int(raw)
    if value is None:
        raise HttpError(400, f"{name} must be an integer from 0 to {MAX_INT}, got {raw!r}", parameter=name)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise HttpError(400, f"{name} must be {bounds}, got {value}", parameter=name)
    return value


def enum_arg(name: str, enum: type[Enum]) -> Any:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return enum(raw.upper())
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise HttpError(400, f"{name} must be one of {allowed}, got {raw!r}", parameter=name) from None


def bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise HttpError(400, f"{name} must be true or false, got {raw!r}", parameter=name)


def parse_id(raw: str, what: str) -> int:
    """An id from the query string: 400 naming it when it is not an integer up to 2^63-1."""
    value = ascii_int(raw, MAX_ROW_ID)
    if value is None:
        raise HttpError(400, f"{what} id must be an integer from 0 to {MAX_ROW_ID}, got {raw!r}", parameter="id")
    return value


# --- JSON shapes ---
def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return utc_iso(value, "seconds")


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


# --- helpers ---
def paginated(session: Session, query: Select[Any], shape: Callable[[Any], dict[str, Any]]) -> Response:
    limit = int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(query.limit(limit).offset(offset)).all()
    next_url = None
    if offset + len(rows) < total:
        args = {**request.args.to_dict(), "limit": str(limit), "offset": str(offset + limit)}
        next_url = f"{request.path}?{urlencode(args)}"
    return jsonify({"items": [shape(r) for r in rows], "total": total, "limit": limit, "offset": offset,
                    "next": next_url})


def one(session: Session, model: type, raw_id: str, what: str, *options: Any) -> Any:
    item_id = ascii_int(raw_id, MAX_ROW_ID)  # a path that is not an id names nothing: 404, like an unknown id
    found = session.get(model, item_id, options=list(options)) if item_id is not None else None
    if found is None:
        raise HttpError(404, f"no {what} with id {raw_id}", id=raw_id)
    return found


# --- routes ---
def products_query() -> Select[Any]:
    """Products in id order, ``?available=true|false`` to filter (products and inventory share it)."""
    query = select(Product).order_by(Product.id)
    available = bool_arg("available")
    if available is not None:
        query = query.where(Product.is_available.is_(available))
    return query


@api_bp.get("/products")
def products() -> Response:
    with get_database().new_session() as session:
        return paginated(session, products_query(), product_json)


@api_bp.get("/products/<raw_id>")
def product(raw_id: str) -> Response:
    with get_database().new_session() as session:
        p = one(session, Product, raw_id, "product", selectinload(Product.listings))
        return jsonify({**product_json(p), "listings": [listing_json(li) for li in p.listings]})


@api_bp.get("/inventory")
def inventory() -> Response:
    with get_database().new_session() as session:
        return paginated(session, products_query(), inventory_json)


@api_bp.get("/inventory/<raw_id>")
def inventory_item(raw_id: str) -> Response:
    with get_database().new_session() as session:
        return jsonify(inventory_json(one(session, Product, raw_id, "product")))


@api_bp.get("/listings")
def listings() -> Response:
    query = select(Listing).order_by(Listing.id)
    status = enum_arg("status", ListingStatus)
    marketplace = enum_arg("marketplace", Marketplace)
    if status is not None:
        query = query.where(Listing.status == status)
    if marketplace is not None:
        query = query.where(Listing.marketplace == marketplace)
    product_id = request.args.get("productId")
    if product_id:
        query = query.where(Listing.product_id == parse_id(product_id, "product"))
    with get_database().new_session() as session:
        return paginated(session, query, listing_json)


@api_bp.get("/listings/<raw_id>")
def listing(raw_id: str) -> Response:
    with get_database().new_session() as session:
        li = one(session, Listing, raw_id, "listing")
        history = session.scalars(select(PriceHistory).where(PriceHistory.listing_id == li.id)
                                  .order_by(PriceHistory.id.desc()).limit(20)).all()
        return jsonify({**listing_json(li), "priceHistory": [price_change_json(h) for h in history]})


@api_bp.get("/pricing")
def pricing() -> Response:
    """Price changes, newest first (``?listingId=`` for one listing)."""
    query = select(PriceHistory).order_by(PriceHistory.id.desc())
    listing_id = request.args.get("listingId")
    if listing_id:
        query = query.where(PriceHistory.listing_id == parse_id(listing_id, "listing"))
    with get_database().new_session() as session:
        return paginated(session, query, price_change_json)


@api_bp.get("/pricing/<raw_id>")
def price_change(raw_id: str) -> Response:
    with get_database().new_session() as session:
        return jsonify(price_change_json(one(session, PriceHistory, raw_id, "price change")))


@api_bp.get("/orders")
def orders() -> Response:
    query = select(Order).order_by(Order.id.desc())
    status = enum_arg("status", OrderStatus)
    if status is not None:
        query = query.where(Order.status == status)
    with get_database().new_session() as session:
        return paginated(session, query, order_json)


@api_bp.get("/orders/<raw_id>")
def order(raw_id: str) -> Response:
    with get_database().new_session() as session:
        o = one(session, Order, raw_id, "order", selectinload(Order.lines))
        return jsonify(order_json(o, with_lines=True))
