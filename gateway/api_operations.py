"""What each route reads and answers, one entry per (endpoint, method): the input of ``api_docs``.

The answers name the models of ``gateway.api_schemas``; query parameters and headers are
described here because the views read them from ``request`` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gateway import api_schemas as s
from gateway.stream_schemas import STREAM_MESSAGES
from shared.constants import CHANNEL_NAMES
from shared.models import ListingStatus, Marketplace, OrderStatus, WebhookStatus


@dataclass(frozen=True)
class Answer:
    description: str
    model: type[BaseModel] | None = None
    media: str = "application/json"
    schema: dict[str, Any] | None = None
    headers: tuple[str, ...] = ()

    def as_openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.model is not None:
            out["content"] = {self.media: {"schema": {"$ref": f"#/components/schemas/{self.model.__name__}"}}}
        elif self.schema is not None:
            out["content"] = {self.media: {"schema": self.schema}}
        if self.headers:
            out["headers"] = {h: {"schema": {"type": "string"}} for h in self.headers}
        return out


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False

    def as_openapi(self, where: str = "query") -> dict[str, Any]:
        out = {"name": self.name, "in": where, "required": self.required, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Operation:
    tag: str
    responses: dict[int, Answer]
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    security: tuple[str, ...] | None = ("ApiKey", "Bearer")
    summary: str = ""
    body: dict[str, Any] | None = None


def _error(description: str) -> Answer:
    return Answer(description, s.Error)


BAD = {400: _error("a parameter is wrong; the error names it")}
AUTH = {401: _error("no key, or a wrong one"), 429: _error("too many failed attempts from this address")}
ADMIN = {403: _error("a read key: this route needs a key from ADMIN_API_KEYS")}
NOT_FOUND = {404: _error("no such item")}
DB = {503: _error("the database is not ready or unreachable")}
PAGE_PARAMS = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
    Param("offset", {"type": "integer", "minimum": 0, "default": 0}),
)


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values]}


def _list(model: type[BaseModel], *params: Param) -> Operation:
    return Operation("JSON API", {200: Answer("one page of items", s.Page), **BAD, **AUTH, **DB},
                     query=PAGE_PARAMS + params)


def _one(model: type[BaseModel]) -> Operation:
    return Operation("JSON API", {200: Answer("the item", model), **BAD, **AUTH, **NOT_FOUND, **DB})


SSE_DESCRIPTION = (
    "text/event-stream. First `retry:` and `event: connected`; then one `event: <TYPE>` message per "
    "debounce window and type (data: EventBatch), `event: heartbeat` every SSE_HEARTBEAT_INTERVAL ms, and "
    "`event: reset` when a Last-Event-ID cannot be resumed. Each message's `id:` is the cursor to resume from."
)
SIGNED_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}},
               "description": "the marketplace's notification, signed over its raw bytes"}

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("realtime.events", "GET"): Operation(
        "Stream", {
            200: Answer(SSE_DESCRIPTION, media="text/event-stream",
                        schema={"type": "string", "x-sse-messages": {
                            name: {"$ref": f"#/components/schemas/{model.__name__}"}
                            for name, model in STREAM_MESSAGES.items()}}),
            **BAD, **AUTH,
            429: _error("too many failed attempts from this address, or past SSE_MAX_STREAMS_PER_KEY, "
                        "SSE_MAX_STREAMS_PER_ADDRESS or SSE_NEW_STREAMS_PER_ADDRESS_RATE (`limit` names it)"),
            503: _error("realtime is disabled, Redis is unreachable, or the process holds its maximum of streams"),
        },
        query=(Param("channels", {"type": "string", "example": "inventory,orders"},
                     f"comma-separated, of {', '.join(sorted(CHANNEL_NAMES))}; all by default"),
               Param("lastEventId", {"type": "string"}, "resume after this id (for clients that cannot send headers)"),
               Param("token", {"type": "string"}, "a stream token, instead of a key")),
        headers=(Param("Last-Event-ID", {"type": "string"}, "resume after this id"),),
        security=("ApiKey", "Bearer", "StreamToken", "StreamCookie"),
    ),
    ("realtime.token", "POST"): Operation(
        "Stream", {200: Answer("a short-lived stream token, also set as an HttpOnly cookie", s.Token), **AUTH}),
    ("realtime.status", "GET"): Operation("Operations", {200: Answer("the cluster's state", s.Status), **AUTH}),
    ("realtime.stats", "GET"): Operation(
        "Operations", {200: Answer("counters, latency and per-day history", s.Stats), **BAD, **AUTH,
                       503: _error("Redis is unreachable")},
        query=(Param("days", {"type": "integer", "minimum": 1, "maximum": 90, "default": 7}),)),
    ("realtime.connections", "GET"): Operation(
        "Operations", {200: Answer("the open streams (at most 200 per process)", s.Connections), **AUTH, **ADMIN}),
    ("realtime.publish_test_event", "POST"): Operation(
        "Operations", {201: Answer("the published LISTING_UPDATE", s.PublishedTestEvent), **AUTH, **ADMIN,
                       503: _error("the bus could not publish")}),
    ("health.health", "GET"): Operation("Health", {200: Answer("Redis reachable or not", s.Health)}, security=None),
    ("probes.live", "GET"): Operation("Health", {200: Answer("the process answers", s.Live)}, security=None),
    ("probes.ready", "GET"): Operation(
        "Health", {200: Answer("Redis, the database and the stream reader are there", s.Ready),
                   503: Answer("something is missing; `missing` names it", s.Ready)}, security=None),
    ("metrics.metrics", "GET"): Operation(
        "Operations", {200: Answer("Prometheus text format", media="text/plain", schema={"type": "string"}),
                       **AUTH}),
    ("webhooks.receive", "POST"): Operation(
        "Webhooks", {
            202: Answer("stored and queued", s.WebhookAccepted),
            200: Answer("seen before; nothing changed", s.WebhookDuplicate),
            **BAD, 401: _error("missing, wrong or stale signature"), 404: _error("unknown provider"),
            413: _error("body over WEBHOOK_MAX_BYTES"), 503: _error("this provider is not configured"),
        },
        headers=(Param("X-Joom-Signature", {"type": "string"}, "Joom: hex HMAC-SHA256 of the body"),
                 Param("X-EBAY-SIGNATURE", {"type": "string"}, "eBay: base64 HMAC-SHA256 of timestamp + body"),
                 Param("X-EBAY-TIMESTAMP", {"type": "string"}, "eBay: unix seconds, within 5 minutes")),
        security=None, body=SIGNED_BODY),
    ("webhooks.ebay_challenge", "GET"): Operation(
        "Webhooks", {200: Answer("eBay's endpoint validation", s.ChallengeResponse), **BAD,
                     503: _error("EBAY_VERIFICATION_TOKEN or EBAY_WEBHOOK_ENDPOINT is not set")},
        query=(Param("challenge_code", {"type": "string"}, required=True),), security=None),
    ("webhooks.list_events", "GET"): Operation(
        "Webhooks", {200: Answer("stored deliveries, newest first", s.WebhookEvents), **BAD, **AUTH, **ADMIN, **DB},
        query=(Param("status", _enum(WebhookStatus)), Param("provider", {"type": "string"}),
               Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}))),
    ("webhooks.retry_event", "POST"): Operation(
        "Webhooks", {202: Answer("set back to PENDING and queued", s.WebhookRetried), **AUTH, **ADMIN, **NOT_FOUND,
                     409: _error("already COMPLETED"), **DB}),
    ("notifications.dead", "GET"): Operation(
        "Notifications", {200: Answer("dead-lettered notifications, with target, error and attempts", s.DeadLetters),
                          **AUTH, 403: _error("an admin key is needed")}),
    ("notifications.retry", "POST"): Operation(
        "Notifications", {202: Answer("queued again for its target", s.Requeued), **AUTH,
                          403: _error("an admin key is needed"), 404: _error("no such dead letter")}),
    ("notifications.acknowledge", "POST"): Operation(
        "Orders", {200: Answer("the order is acknowledged (escalation stops)", s.Acknowledged), **BAD, **AUTH,
                   **NOT_FOUND, **DB}),
    ("notifications.unacknowledged", "GET"): Operation(
        "Orders", {200: Answer("orders nobody has acknowledged yet", s.UnacknowledgedCount), **AUTH, **DB}),
    ("api.products", "GET"): _list(s.Product, Param("available", {"type": "boolean"})),
    ("api.product", "GET"): _one(s.Product),
    ("api.inventory", "GET"): _list(s.InventoryItem, Param("available", {"type": "boolean"})),
    ("api.inventory_item", "GET"): _one(s.InventoryItem),
    ("api.listings", "GET"): _list(s.Listing, Param("status", _enum(ListingStatus)),
                                   Param("marketplace", _enum(Marketplace)),
                                   Param("productId", {"type": "integer", "minimum": 0})),
    ("api.listing", "GET"): _one(s.Listing),
    ("api.pricing", "GET"): _list(s.PriceChange, Param("listingId", {"type": "integer", "minimum": 0})),
    ("api.price_change", "GET"): _one(s.PriceChange),
    ("api.orders", "GET"): _list(s.Order, Param("status", _enum(OrderStatus))),
    ("api.order", "GET"): _one(s.Order),
    ("dashboard.index", "GET"): Operation(
        "Dashboard", {200: Answer("the live dashboard", media="text/html", schema={"type": "string"})},
        security=None),
    ("dashboard.detail", "GET"): Operation(
        "Dashboard", {200: Answer("one item's page", media="text/html", schema={"type": "string"}),
                      404: Answer("not a kind of item", media="text/html", schema={"type": "string"})},
        security=None),
    ("docs.openapi_document", "GET"): Operation(
        "Documentation", {200: Answer("this document", schema={"type": "object"})}, security=None),
    ("docs.docs_page", "GET"): Operation(
        "Documentation", {200: Answer("Swagger UI", media="text/html", schema={"type": "string"})}, security=None),
    ("docs.docs_init", "GET"): Operation(
        "Documentation", {200: Answer("the page's script", media="text/javascript", schema={"type": "string"})},
        security=None),
    ("docs.docs_asset", "GET"): Operation(
        "Documentation", {200: Answer("a Swagger UI file"), 404: Answer("no such file")}, security=None),
}


def all_models() -> list[type[BaseModel]]:
    """Every model an answer names, and the stream's messages."""
    models = {a.model for op in OPERATIONS.values() for a in op.responses.values() if a.model is not None}
    models.update(STREAM_MESSAGES.values())
    return sorted(models, key=lambda m: m.__name__)
