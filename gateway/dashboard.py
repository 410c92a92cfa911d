"""The operator's pages: the live dashboard and the detail pages it links to.

The pages are shells: they hold no data and need no key. The browser asks for the API key
once, then fetches ``/api/...`` and follows ``/api/realtime/events`` (gateway/static/).
"""

from __future__ import annotations

from flask import Blueprint, render_template

dashboard_bp = Blueprint("dashboard", __name__)

DETAIL_KINDS = {"products": "Product", "listings": "Listing", "orders": "Order"}


@dashboard_bp.get("/")
def index() -> str:
    return render_template("dashboard.html")


@dashboard_bp.get("/<any(products, listings, orders):kind>/<item_id>")
def detail(kind: str, item_id: str) -> str:
    return render_template("detail.html", kind=kind, noun=DETAIL_KINDS[kind], item_id=item_id)
