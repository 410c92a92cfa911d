"""The shapes of the gateway's answers, as pydantic models: the source of the OpenAPI description.

The routes build their JSON by hand (it is small and fast); these models say what that JSON is,
and the schemathesis run in the suite checks every answer against them, so a route that drifts
from its model fails a test.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- errors and health ---
class Error(Model):
    """Every 4xx and 5xx under /api: what was wrong, said in words; sometimes a field or the allowed values."""

    error: str
    status: int
    field: str | None = None
    allowed: list[str] | None = None


class Health(Model):
    status: Literal["ok", "degraded"]
    redisReachable: bool
    realtimeEnabled: bool


class Live(Model):
    status: Literal["alive"]


class Ready(Model):
    status: Literal["ready", "not ready"]
    checks: dict[str, bool]
    missing: list[str] | None = None


# --- /api/realtime ---
class Token(Model):
    token: str
    expiresIn: int = Field(description="seconds")
    cookie: str = Field(description="name of the HttpOnly cookie that carries the same token")


class ProcessView(Model):
    processId: str
    pid: int
    uptime: float
    redisReachable: bool
    activeConnections: int
    totalConnections: int


class Status(Model):
    enabled: bool
    redisReachable: bool
    activeConnections: int
    totalConnections: int
    peakConnections: int
    heartbeatInterval: int
    debounceWindow: int
    processCount: int
    process: ProcessView
    processes: list[ProcessView]


class LatencySummary(Model):
    samples: int
    p50: float | None
    p95: float | None
    p99: float | None


class Stats(Model):
    types: dict[str, dict[str, int]]
    connections: dict[str, int]
    latencyMs: LatencySummary
    processes: int
    days: list[dict[str, Any]]
    generatedAt: float


class Connection(Model):
    id: str
    processId: str
    channels: list[str]


class Connections(Model):
    total: int
    listed: int
    truncated: bool
    connections: list[Connection]


class PublishedTestEvent(Model):
    type: str
    payload: dict[str, Any]
    timestamp: str
    id: str | None
    published: bool


# --- the JSON API ---
class Page(Model):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next: str | None


class Product(Model):
    id: int
    title: str
    source: str
    isAvailable: bool
    status: str


class InventoryItem(Model):
    productId: int
    title: str
    isAvailable: bool
    status: str


class Listing(Model):
    id: int
    productId: int
    marketplace: str
    status: str
    price: str | None
    currency: str


class PriceChange(Model):
    id: int
    listingId: int
    oldPrice: str | None
    newPrice: str | None
    currency: str


class Order(Model):
    id: int
    marketplace: str
    marketplaceOrderId: str
    total: str | None
    currency: str
    status: str


# --- webhooks ---
class WebhookAccepted(Model):
    status: Literal["accepted"]
    id: int
    deliveryId: str
    queued: bool


class WebhookDuplicate(Model):
    status: Literal["duplicate"]
    deliveryId: str
    message: str


class ChallengeResponse(Model):
    challengeResponse: str


class WebhookEvent(Model):
    id: int
    provider: str
    deliveryId: str
    topic: str | None
    status: str
    attempts: int


class WebhookEvents(Model):
    events: list[WebhookEvent]


class WebhookRetried(WebhookEvent):
    queued: bool


# --- notifications and order acknowledgement ---
class DeadLetters(Model):
    total: int
    items: list[dict[str, Any]]


class Requeued(Model):
    requeued: bool
    id: str
    target: str


class Acknowledged(Model):
    id: int
    acknowledged: bool
    acknowledgedAt: str | None
    alreadyAcknowledged: bool


class UnacknowledgedCount(Model):
    count: int
