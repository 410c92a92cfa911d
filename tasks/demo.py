"""The demo: a seeded catalogue, and a sandbox buyer who keeps ordering, so events flow on their own.

Everything is derived from SANDBOX_SEED, so two runs with the same seed build the same
catalogue and receive the same orders in the same sequence.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from celery import Celery
from sqlalchemy import func, select

from shared import task_names
from shared.models import (
    ExchangeRate,
    Listing,
    ListingStatus,
    Marketplace,
    Order,
    OrderStatus,
    PriceSetting,
    Product,
    ProductSource,
    WebhookEvent,
    WebhookStatus,
    utcnow,
)
from shared.timestamps import utc_iso
from tasks.pricing import Fees, listing_price, shipping_usd
from tasks.registry import RakudaTask, task
from tasks.runtime import Runtime
from tasks.supplier import SandboxSupplier

JPY_TO_USD = Decimal("0.0067")
PRICE_SETTINGS = {
    Marketplace.EBAY: dict(platform_fee_rate=Decimal("0.1325"), payment_fee_rate=Decimal("0.03"),
                           ad_rate=Decimal("0.02"), profit_rate=Decimal("0.15"), default_shipping_usd=Decimal("15.00")),
    Marketplace.JOOM: dict(platform_fee_rate=Decimal("0.15"), payment_fee_rate=Decimal("0.03"),
                           ad_rate=Decimal("0"), profit_rate=Decimal("0.20"), default_shipping_usd=Decimal("0")),
}
_BRANDS = ["Seiko", "Nikon", "Canon", "Casio", "Sony", "Pentax", "Citizen", "Olympus", "Yamaha", "Nintendo"]
_THINGS = ["watch", "lens", "camera", "keyboard", "headphones", "film camera", "guitar pedal", "game console",
           "fountain pen", "tea set"]
_SOURCES = [ProductSource.MERCARI, ProductSource.YAHOO_AUCTION, ProductSource.RAKUTEN, ProductSource.AMAZON]


@dataclass(frozen=True)
class Seeded:
    """What ``seed_catalogue`` created, and the listings left for the worker to publish."""

    products: int = 0
    listings: int = 0
    orders: int = 0
    pending_ids: tuple[int, ...] = ()

    def summary(self) -> str:
        return (f"products={self.products}, listings={self.listings}, orders={self.orders}, "
                f"pending={len(self.pending_ids)}")


def seed_catalogue(rt: Runtime, products: int = 300, orders: int = 20) -> Seeded:
    """Create the demo catalogue once (price settings, a rate, products, listings, orders).

    A database that already has products is left alone (nothing created).
    """
    rng = random.Random(rt.settings.sandbox_seed)
    supplier = SandboxSupplier(rt.settings.sandbox_seed)
    with rt.db.transaction() as session:
        if session.scalar(select(func.count()).select_from(Product)):
            return Seeded()
        settings = {}
        for marketplace, values in PRICE_SETTINGS.items():
            setting = PriceSetting(marketplace=marketplace, **values)
            session.add(setting)
            settings[marketplace.value] = Fees(marketplace.value, **values)
        session.add(ExchangeRate(rate=JPY_TO_USD))
        listings = []
        for i in range(products):
            source = _SOURCES[i % len(_SOURCES)]
            item_id = f"demo{i:05d}"
            product = Product(source=source, source_item_id=item_id,
                              source_url=f"https://sandbox.rakuda.example/{source.value.lower()}/{item_id}",
                              title=f"{rng.choice(_BRANDS)} {rng.choice(_THINGS)} #{i}",
                              purchase_price_jpy=supplier.base_price(source.value, item_id),
                              weight_grams=rng.randrange(100, 3000, 50), is_available=True)
            session.add(product)
            session.flush()
            for marketplace in (Marketplace.EBAY, Marketplace.JOOM):
                listing = _demo_listing(product, marketplace, i, settings[marketplace.value])
                session.add(listing)
                listings.append(listing)
        session.flush()
        active = [lst for lst in listings if lst.status == ListingStatus.ACTIVE]
        for n in range(min(orders, len(active))):
            listing = active[rng.randrange(len(active))]
            session.add(Order(marketplace=listing.marketplace, marketplace_order_id=f"SEED-{n:04d}",
                              buyer_name=f"buyer{n}", total=listing.listing_price, currency="USD",
                              status=rng.choice([OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED]),
                              raw_data={"seeded": True},
                              ordered_at=utcnow()))
        pending = [lst.id for lst in listings if lst.status == ListingStatus.PENDING_PUBLISH]
    return Seeded(products, len(listings), min(orders, len(active)), tuple(pending))


def _demo_listing(product: Product, marketplace: Marketplace, i: int, fees: Fees) -> Listing:
    """The ``i``-th product's listing on ``marketplace``: most are live, every tenth waits to be published."""
    shipping = shipping_usd(marketplace.value, product.weight_grams, fees)
    price = listing_price(product.purchase_price_jpy, JPY_TO_USD, shipping, fees)
    status = ListingStatus.PENDING_PUBLISH if i % 10 == 0 else ListingStatus.ACTIVE
    live = status == ListingStatus.ACTIVE
    return Listing(product=product, marketplace=marketplace, sku=f"ALS-{marketplace.value[0]}{i:06d}",
                   listing_price=price, shipping_cost=shipping, status=status,
                   marketplace_listing_id=f"sandbox-{marketplace.value.lower()}-{i}" if live else None,
                   listed_at=utcnow() if live else None)


def sandbox_delivery(rt: Runtime, rng: random.Random, number: int) -> tuple[str, str, str, dict[str, Any]] | None:
    """(provider, delivery id, topic, body) of the next simulated delivery: a new order or a status change."""
    with rt.db.transaction() as session:
        listing = session.scalars(select(Listing).where(Listing.status == ListingStatus.ACTIVE)
                                  .order_by(Listing.id).offset(rng.randrange(100)).limit(1)).first()
        recent = session.scalars(select(Order).where(Order.status == OrderStatus.PENDING).order_by(Order.id.desc())
                                 .limit(1)).first()
        if listing is None:
            return None
        if recent is not None and rng.random() < 0.4:
            if recent.marketplace == Marketplace.JOOM:
                return "joom", f"sandbox-{number}", "order.paid", {
                    "event": "order.paid", "order": {"id": recent.marketplace_order_id}}
            body = {"metadata": {"topic": "MARKETPLACE_ORDER_PAID", "notificationId": f"sandbox-{number}"},
                    "notification": {"data": {"orderId": recent.marketplace_order_id,
                                              "orderPaymentStatus": "PAID"}}}
            return "ebay", f"sandbox-{number}", "MARKETPLACE_ORDER_PAID", body
        total = str(listing.listing_price)
        if listing.marketplace == Marketplace.JOOM:
            order_id = f"JO-S{number:06d}"
            return "joom", f"sandbox-{number}", "order.created", {"event": "order.created", "order": {
                "id": order_id, "status": "pending", "buyer_name": f"Sandbox buyer {number}",
                "total": total, "currency": "USD", "created_at": utc_iso(utcnow()),
                "items": [{"sku": listing.sku, "title": listing.product.title, "quantity": 1, "price": total}]}}
        order_id = f"99-{number:05d}-{rng.randrange(10**5):05d}"
        return "ebay", f"sandbox-{number}", "MARKETPLACE_ORDER_CREATED", {
            "metadata": {"topic": "MARKETPLACE_ORDER_CREATED", "notificationId": f"sandbox-{number}"},
            "notification": {"data": {
                "orderId": order_id, "orderFulfillmentStatus": "NOT_STARTED", "orderPaymentStatus": "PENDING",
                "creationDate": utc_iso(utcnow()), "buyer": {"username": f"sandbox{number}"},
                "pricingSummary": {"total": {"value": total, "currency": "USD"}},
                "lineItems": [{"sku": listing.sku, "title": listing.product.title, "quantity": 1}]}}}


def receive_sandbox_orders(rt: Runtime, app: Celery) -> int:
    """Store one simulated delivery as if the gateway had received it, and queue its processing."""
    with rt.db.transaction() as session:
        number = session.scalar(select(func.count()).select_from(WebhookEvent)) or 0
    rng = random.Random(rt.settings.sandbox_seed * 1_000_003 + number)
    delivery = sandbox_delivery(rt, rng, number)
    if delivery is None:
        return 0
    provider, delivery_id, topic, body = delivery
    with rt.db.transaction() as session:
        row = WebhookEvent(provider=provider, delivery_id=delivery_id, topic=topic, raw_body=json.dumps(body),
                           headers={"X-Sandbox": "1"}, status=WebhookStatus.PENDING)
        session.add(row)
        session.flush()
        row_id = row.id
    app.send_task(task_names.WEBHOOK_PROCESS, args=[row_id])
    return 1


@task(task_names.DEMO_ORDERS)
def simulate_demo_orders(task: RakudaTask, /) -> int:
    return receive_sandbox_orders(task.runtime, task.app)
