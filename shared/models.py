"""The catalogue, listings, orders, pricing, received webhooks and the event outbox (SQLAlchemy 2).

Enumerations are stored as short strings (``native_enum=False``, checked by SQLAlchemy on write)
so the same schema works on PostgreSQL and SQLite and a new value needs no migration. Money is
NUMERIC(12, 2) (SQLite stores it as a float; fine for the demo, use PostgreSQL for real money).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.model_enums import (
    ListingStatus,
    Marketplace,
    OrderStatus,
    ProductSource,
    ProductStatus,
    WebhookStatus,
)
from shared.outbox_trigger import create_trigger

__all__ = ["Base", "ExchangeRate", "Listing", "ListingStatus", "Marketplace", "Order", "OrderLine", "OrderStatus",
           "OutboxEvent", "OutboxUnsent", "PriceHistory", "PriceSetting", "Product", "ProductSource", "ProductStatus",
           "WebhookEvent", "WebhookStatus", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, name=cls.__name__.lower(),
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


Money = Numeric(12, 2)
Rate = Numeric(12, 8)
Tz = DateTime(timezone=True)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("source", "source_item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[ProductSource] = mapped_column(_enum(ProductSource))
    source_item_id: Mapped[str] = mapped_column(String(128))
    source_url: Mapped[str] = mapped_column(String(1024), default="")
    title: Mapped[str] = mapped_column(String(512))
    purchase_price_jpy: Mapped[int] = mapped_column(Integer)
    weight_grams: Mapped[int] = mapped_column(Integer, default=0)
    is_available: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[ProductStatus] = mapped_column(_enum(ProductStatus), default=ProductStatus.ACTIVE)
    last_checked_at: Mapped[datetime | None] = mapped_column(Tz, index=True)
    source_state_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Tz, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Tz, default=utcnow, onupdate=utcnow)

    listings: Mapped[list[Listing]] = relationship(back_populates="product")


class Listing(Base):
    __tablename__ = "listings"
    __table_args__ = (UniqueConstraint("product_id", "marketplace"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    marketplace: Mapped[Marketplace] = mapped_column(_enum(Marketplace))
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    marketplace_listing_id: Mapped[str | None] = mapped_column(String(128))
    listing_price: Mapped[Decimal | None] = mapped_column(Money)
    shipping_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[ListingStatus] = mapped_column(_enum(ListingStatus), default=ListingStatus.DRAFT, index=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    end_reason: Mapped[str | None] = mapped_column(String(32))  # why it ENDED: out_of_stock, sold_elsewhere
    listed_at: Mapped[datetime | None] = mapped_column(Tz)
    created_at: Mapped[datetime] = mapped_column(Tz, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Tz, default=utcnow, onupdate=utcnow)

    product: Mapped[Product] = relationship(back_populates="listings")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("marketplace", "marketplace_order_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    marketplace: Mapped[Marketplace] = mapped_column(_enum(Marketplace))
    marketplace_order_id: Mapped[str] = mapped_column(String(128))
    buyer_name: Mapped[str] = mapped_column(String(256), default="")
    buyer_email: Mapped[str] = mapped_column(String(256), default="")
    subtotal: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    shipping_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    tax: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    total: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus))
    raw_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Its listing was already SOLD or ENDED when it arrived: the item may be gone (a person decides).
    oversold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    ordered_at: Mapped[datetime | None] = mapped_column(Tz)
    created_at: Mapped[datetime] = mapped_column(Tz, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Tz, default=utcnow, onupdate=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(Tz, index=True)
    acknowledged_by: Mapped[str] = mapped_column(String(128), default="")

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", cascade="all, delete-orphan")


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("listings.id", ondelete="SET NULL"), index=True)
    sku: Mapped[str] = mapped_column(String(64), default="")
    title: Mapped[str] = mapped_column(String(512), default="")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal | None] = mapped_column(Money)

    order: Mapped[Order] = relationship(back_populates="lines")


class PriceSetting(Base):
    """Fees and target profit of one marketplace, as fractions of the selling price."""

    __tablename__ = "price_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    marketplace: Mapped[Marketplace] = mapped_column(_enum(Marketplace), unique=True)
    platform_fee_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    payment_fee_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    ad_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4), default=Decimal("0"))
    profit_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    default_shipping_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))


class ExchangeRate(Base):
    __tablename__ = "exchange_rates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base: Mapped[str] = mapped_column(String(3), default="JPY")
    quote: Mapped[str] = mapped_column(String(3), default="USD")
    rate: Mapped[Decimal] = mapped_column(Rate)
    fetched_at: Mapped[datetime] = mapped_column(Tz, default=utcnow, index=True)


class PriceHistory(Base):
    __tablename__ = "price_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"), index=True)
    old_price: Mapped[Decimal | None] = mapped_column(Money)
    new_price: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    reason: Mapped[str] = mapped_column(String(64), default="price_sync")
    created_at: Mapped[datetime] = mapped_column(Tz, default=utcnow)


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    # A delivery is a duplicate when its id was seen, or its exact body: the signature covers the
    # body but not every provider's delivery id, so a replayed body under a new id is caught here.
    __table_args__ = (UniqueConstraint("provider", "delivery_id"),
                      UniqueConstraint("provider", "body_sha256", name="uq_webhook_events_body"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(128))
    topic: Mapped[str] = mapped_column(String(128))
    raw_body: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[WebhookStatus] = mapped_column(_enum(WebhookStatus), default=WebhookStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # A status notice that came before its order: "MARKETPLACE:order id" until the creation applies it.
    waiting_for: Mapped[str | None] = mapped_column(String(160), index=True)
    received_at: Mapped[datetime] = mapped_column(Tz, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(Tz)


class OutboxEvent(Base):
    """An event written in the transaction of the change it describes; published after commit.

    Stored once and never updated: whether it is still to be published is its row in
    ``outbox_unsent``, which a trigger adds on every insert, however the row was written.
    """

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    event_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Tz, default=utcnow)


class OutboxUnsent(Base):
    """The id of an outbox row not yet published; deleting it is claiming and marking the row sent."""

    __tablename__ = "outbox_unsent"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


event.listen(OutboxUnsent.__table__, "after_create", create_trigger)  # by create_all, as by the migrations
