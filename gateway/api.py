"""``/api``: the catalogue, listings, pricing and orders as JSON, for the dashboard's queries.

Every route needs an API key (like ``/api/realtime``). Lists are paginated with ``limit``
(1..200, default 50) and ``offset`` and answer ``{"items", "total", "limit", "offset", "next"}``;
a bad parameter is a 400 that names it, an unknown id a 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import Select, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload

from gateway.api_json import (
    inventory_json,
    listing_json,
    order_json,
    price_change_json,
    product_json,
)
from gateway.auth import require_api_key
from gateway.errors import HttpError, render
from gateway.params import MAX_INT, MAX_ROW_ID, ascii_int
from gateway.services import services
from shared.models import Listing, ListingStatus, Marketplace, Order, OrderStatus, PriceHistory, Product

log = logging.getLogger(__name__)

api_bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


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


def page(query: Select[Any], shape: Callable[[Any], dict[str, Any]]) -> Response:
    with services().database.new_session() as session:
        return paginated(session, query, shape)


def where_id(query: Select[Any], column: Any, parameter: str, what: str) -> Select[Any]:
    """``query`` narrowed to the row id in ``?<parameter>=`` when it is given (400 naming it when not an id)."""
    raw = request.args.get(parameter)
    return query.where(column == parse_id(raw, what)) if raw else query


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
    return page(products_query(), product_json)


@api_bp.get("/products/<raw_id>")
def product(raw_id: str) -> Response:
    with services().database.new_session() as session:
        p = one(session, Product, raw_id, "product", selectinload(Product.listings))
        return jsonify({**product_json(p), "listings": [listing_json(li) for li in p.listings]})


@api_bp.get("/inventory")
def inventory() -> Response:
    return page(products_query(), inventory_json)


@api_bp.get("/inventory/<raw_id>")
def inventory_item(raw_id: str) -> Response:
    with services().database.new_session() as session:
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
    return page(where_id(query, Listing.product_id, "productId", "product"), listing_json)


@api_bp.get("/listings/<raw_id>")
def listing(raw_id: str) -> Response:
    with services().database.new_session() as session:
        li = one(session, Listing, raw_id, "listing")
        history = session.scalars(select(PriceHistory).where(PriceHistory.listing_id == li.id)
                                  .order_by(PriceHistory.id.desc()).limit(20)).all()
        return jsonify({**listing_json(li), "priceHistory": [price_change_json(h) for h in history]})


@api_bp.get("/pricing")
def pricing() -> Response:
    """Price changes, newest first (``?listingId=`` for one listing)."""
    query = select(PriceHistory).order_by(PriceHistory.id.desc())
    return page(where_id(query, PriceHistory.listing_id, "listingId", "listing"), price_change_json)


@api_bp.get("/pricing/<raw_id>")
def price_change(raw_id: str) -> Response:
    with services().database.new_session() as session:
        return jsonify(price_change_json(one(session, PriceHistory, raw_id, "price change")))


@api_bp.get("/orders")
def orders() -> Response:
    query = select(Order).order_by(Order.id.desc())
    status = enum_arg("status", OrderStatus)
    if status is not None:
        query = query.where(Order.status == status)
    return page(query, order_json)


@api_bp.get("/orders/<raw_id>")
def order(raw_id: str) -> Response:
    with services().database.new_session() as session:
        o = one(session, Order, raw_id, "order", selectinload(Order.lines))
        return jsonify(order_json(o, with_lines=True))
