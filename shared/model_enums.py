"""The states and kinds the models store, each as a short string (a new value needs no migration)."""

from __future__ import annotations

import enum


class ProductSource(enum.StrEnum):
    MERCARI = "MERCARI"
    YAHOO_AUCTION = "YAHOO_AUCTION"
    RAKUTEN = "RAKUTEN"
    AMAZON = "AMAZON"
    OTHER = "OTHER"


class ProductStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    DISCONTINUED = "DISCONTINUED"


class Marketplace(enum.StrEnum):
    EBAY = "EBAY"
    JOOM = "JOOM"


class ListingStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    PENDING_PUBLISH = "PENDING_PUBLISH"
    PUBLISHING = "PUBLISHING"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"
    SOLD = "SOLD"
    ERROR = "ERROR"


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


class WebhookStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    IGNORED = "IGNORED"
