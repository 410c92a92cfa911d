"""The JSON API behind the dashboard's queries (Flask test client, real PostgreSQL; no browser)."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.services import services_of
from shared.config import Settings

KEY = {"X-API-Key": "test-key"}


@pytest.fixture
def client(dashboard_settings, catalogue):
    app = create_app(dashboard_settings)
    yield app.test_client()
    services_of(app).close()


@pytest.mark.parametrize("path", ["/api/products", "/api/inventory", "/api/listings", "/api/pricing", "/api/orders",
                                  "/api/products/1", "/api/orders/1"])
def test_every_route_needs_the_api_key(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.json["error"].startswith("missing API key")
    assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401


def test_lists_are_paginated_with_a_link_to_the_next_page(client, catalogue):
    first = client.get("/api/products?limit=1", headers=KEY).json
    assert first["total"] == 2 and first["limit"] == 1 and first["offset"] == 0
    assert [p["id"] for p in first["items"]] == [catalogue["camera"]]
    second = client.get(first["next"], headers=KEY).json
    assert [p["id"] for p in second["items"]] == [catalogue["lens"]]
    assert second["next"] is None


@pytest.mark.parametrize("query, parameter", [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset"),
    ("available=maybe", "available"),
])
def test_a_bad_parameter_is_a_400_that_names_it(client, query, parameter):
    response = client.get(f"/api/products?{query}", headers=KEY)
    assert response.status_code == 400
    assert response.json["parameter"] == parameter
    assert response.json["error"].startswith(parameter)


def test_a_bad_filter_value_lists_the_allowed_ones(client):
    response = client.get("/api/listings?marketplace=amazon", headers=KEY)
    assert response.status_code == 400
    assert "EBAY, JOOM" in response.json["error"]


def test_an_unknown_or_malformed_id_is_a_404(client):
    missing = client.get("/api/orders/999999", headers=KEY)
    assert missing.status_code == 404
    assert missing.json["error"] == "no order with id 999999"
    malformed = client.get("/api/listings/abc", headers=KEY)
    assert malformed.status_code == 404  # a path that is not an id names nothing
    assert "no listing with id" in malformed.json["error"]


def test_a_product_shows_its_availability_and_listings(client, catalogue):
    product = client.get(f"/api/products/{catalogue['camera']}", headers=KEY).json
    assert product["isAvailable"] is True and product["status"] == "ACTIVE"
    assert [li["sku"] for li in product["listings"]] == ["CAM-1"]
    inventory = client.get(f"/api/inventory/{catalogue['lens']}", headers=KEY).json
    assert inventory == {**inventory, "productId": catalogue["lens"], "isAvailable": True}
    assert client.get("/api/inventory?available=false", headers=KEY).json["total"] == 0


def test_listings_show_price_status_and_marketplace_and_filter_by_them(client, catalogue):
    listings = client.get("/api/listings?marketplace=joom&status=active", headers=KEY).json
    assert [(li["sku"], li["price"], li["currency"], li["status"], li["marketplace"]) for li in listings["items"]] == [
        ("LENS-1", "64.50", "USD", "ACTIVE", "JOOM")]
    listing = client.get(f"/api/listings/{catalogue['ebay']}", headers=KEY).json
    assert [(h["oldPrice"], h["newPrice"]) for h in listing["priceHistory"]] == [("179.00", "189.00")]


def test_pricing_lists_price_changes_newest_first(client, catalogue):
    changes = client.get(f"/api/pricing?listingId={catalogue['ebay']}", headers=KEY).json
    assert changes["total"] == 1
    one = client.get(f"/api/pricing/{changes['items'][0]['id']}", headers=KEY).json
    assert one["listingId"] == catalogue["ebay"] and one["newPrice"] == "189.00"


def test_orders_list_and_detail(client, catalogue):
    orders = client.get("/api/orders?status=paid", headers=KEY).json
    assert [o["id"] for o in orders["items"]] == [catalogue["order"]]
    order = client.get(f"/api/orders/{catalogue['order']}", headers=KEY).json
    assert order["total"] == "189.00" and order["buyerName"] == "A. Buyer" and order["lines"] == []


def test_a_database_without_tables_is_a_503_that_says_what_to_run(settings, tmp_path, caplog):
    app = create_app(Settings.from_env({**settings.env_items(), "DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"}))
    response = app.test_client().get("/api/orders", headers=KEY)
    assert response.status_code == 503
    assert response.json["error"] == "the database is not ready: it has no tables yet (run `rakuda db upgrade`)"
    assert "database error on GET /api/orders" in caplog.text
    services_of(app).close()
