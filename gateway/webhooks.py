"""``/api/webhooks``: receive signed eBay and Joom deliveries, store them, hand them to a Celery task.

The endpoint checks the signature over the raw bytes, validates the fields the task will need,
stores the delivery (unique per provider and delivery id, and per body; several at once share one
commit: gateway/webhook_store.py) and answers 202 at once; the task
``rakuda.webhooks.process`` (sent by name through gateway/webhook_queue.py) does the rest.
If the broker is down the delivery stays PENDING and the periodic sweep queues it later.

Answers: 202 accepted, 200 duplicate, 400 malformed (naming the field), 401 bad or stale
signature, 404 unknown provider, 413 too large, 503 secret not configured. Only a 202
stores a row. The admin routes need an admin key (ADMIN_API_KEYS).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from gateway.auth import require_admin_key
from gateway.errors import HttpError
from gateway.params import ascii_int
from gateway.services import services
from gateway.webhook_queue import queue_processing
from gateway.webhook_store import Delivery, DeliveryStore
from shared.config import Settings
from shared.models import WebhookEvent, WebhookStatus
from shared.webhook_payloads import PROVIDERS, PayloadError, parse_notice
from shared.webhook_signatures import (
    ebay_challenge_response,
    ebay_signature_valid,
    ebay_timestamp_fresh,
    joom_signature_valid,
)

webhooks_bp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks")

# Headers kept with a delivery for auditing; credentials of ours never are.
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Joom-Signature", "X-Joom-Delivery-Id",
                "X-EBAY-SIGNATURE", "X-EBAY-TIMESTAMP")


def _store() -> DeliveryStore:
    store = current_app.extensions.get("rakuda_webhook_store")
    if store is None:
        store = current_app.extensions["rakuda_webhook_store"] = DeliveryStore(services().database.engine)
    return store


def read_body(settings: Settings) -> bytes:
    limit = settings.webhook_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(413, f"body of {request.content_length} bytes is over the limit of {limit} (WEBHOOK_MAX_BYTES)")
    if request.content_length is None:
        # Chunked: no length up front. Read the decoded input ourselves, one byte past the limit,
        # because Werkzeug's own limit stops reading there and keeps what it has (a cut body whose
        # first part may still carry a valid signature).
        source = request.environ["wsgi.input"]
        parts, size = [], 0
        while size <= limit:
            part = source.read(min(65536, limit + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
        raw = b"".join(parts)
    else:
        raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise HttpError(413, f"body is over the limit of {limit} bytes (WEBHOOK_MAX_BYTES)")
    return raw


def check_signature(provider: str, settings: Settings, raw: bytes) -> None:
    """401 unless the raw body carries a valid (and, for eBay, fresh) signature."""
    if provider == "joom":
        if not settings.joom_webhook_secret:
            raise HttpError(503, "Joom webhooks are not configured (JOOM_WEBHOOK_SECRET is empty)")
        presented = request.headers.get("X-Joom-Signature")
        if not presented:
            raise HttpError(401, "missing X-Joom-Signature header")
        if not joom_signature_valid(settings.joom_webhook_secret, raw, presented):
            raise HttpError(401, "invalid X-Joom-Signature")
        return
    if not settings.ebay_webhook_secret:
        raise HttpError(503, "eBay webhooks are not configured (EBAY_WEBHOOK_SECRET is empty)")
    presented = request.headers.get("X-EBAY-SIGNATURE")
    timestamp = request.headers.get("X-EBAY-TIMESTAMP")
    if not presented or not timestamp:
        raise HttpError(401, "missing X-EBAY-SIGNATURE or X-EBAY-TIMESTAMP header")
    if not ebay_timestamp_fresh(timestamp):
        raise HttpError(401, "X-EBAY-TIMESTAMP is not within 5 minutes of the server's time")
    if not ebay_signature_valid(settings.ebay_webhook_secret, timestamp, raw, presented):
        raise HttpError(401, "invalid X-EBAY-SIGNATURE")


def delivery_identity(provider: str, body: dict[str, Any], raw: bytes) -> tuple[str, str]:
    """(delivery id, topic) of a validated delivery."""
    if provider == "joom":
        delivery_id = request.headers.get("X-Joom-Delivery-Id") or hashlib.sha256(raw).hexdigest()
        return delivery_id[:128], str(body["event"])
    return str(body["metadata"]["notificationId"])[:128], str(body["metadata"]["topic"])


@webhooks_bp.post("/<provider>")
def receive(provider: str) -> tuple[Response, int]:
    if provider not in PROVIDERS:
        raise HttpError(404, f"unknown webhook provider {provider!r}", providers=list(PROVIDERS))
    settings = services().settings
    raw = read_body(settings)
    check_signature(provider, settings, raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "body is not UTF-8 text") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise HttpError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise HttpError(400, "body nests too deeply", field="body") from None
    try:
        parse_notice(provider, body)
    except PayloadError as exc:
        raise HttpError(400, f"invalid {provider} delivery: {exc}", field=exc.field) from None
    delivery_id, topic = delivery_identity(provider, body, raw)
    headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
    row_id = _store().store(Delivery(provider=provider, delivery_id=delivery_id, topic=topic, raw_body=text,
                                     body_sha256=hashlib.sha256(raw).hexdigest(), headers=headers))
    if row_id is None:
        return jsonify({"status": "duplicate", "deliveryId": delivery_id,
                        "message": "this delivery (or this exact body) was already received; nothing changed"}), 200
    queued = queue_processing(row_id)
    return jsonify({"status": "accepted", "id": row_id, "deliveryId": delivery_id, "queued": queued}), 202


@webhooks_bp.get("/ebay")
def ebay_challenge() -> Response:
    """eBay's endpoint validation: answer sha256(challenge_code + token + endpoint)."""
    code = request.args.get("challenge_code")
    if not code:
        raise HttpError(400, "missing challenge_code query parameter")
    settings = services().settings
    if not settings.ebay_verification_token or not settings.ebay_webhook_endpoint:
        raise HttpError(503, "EBAY_VERIFICATION_TOKEN and EBAY_WEBHOOK_ENDPOINT must be set to answer eBay's challenge")
    return jsonify({"challengeResponse": ebay_challenge_response(
        code, settings.ebay_verification_token, settings.ebay_webhook_endpoint)})


def describe(row: WebhookEvent) -> dict[str, Any]:
    return {"id": row.id, "provider": row.provider, "deliveryId": row.delivery_id, "topic": row.topic,
            "status": row.status.value, "attempts": row.attempts, "error": row.error,
            "receivedAt": row.received_at.isoformat() if row.received_at else None,
            "processedAt": row.processed_at.isoformat() if row.processed_at else None}


@webhooks_bp.get("/events")
@require_admin_key
def list_events() -> Response:
    """Stored deliveries, newest first; ``?status=FAILED&provider=joom&limit=50``."""
    query = select(WebhookEvent).order_by(WebhookEvent.id.desc())
    status = request.args.get("status")
    if status:
        try:
            query = query.where(WebhookEvent.status == WebhookStatus(status.upper()))
        except ValueError:
            raise HttpError(400, f"unknown status {status!r}", allowed=[s.value for s in WebhookStatus]) from None
    provider = request.args.get("provider")
    if provider:
        if provider not in PROVIDERS:
            raise HttpError(400, f"unknown provider {provider!r}", allowed=list(PROVIDERS))
        query = query.where(WebhookEvent.provider == provider)
    raw_limit = ascii_int(request.args.get("limit", "50"))
    if raw_limit is None:
        raise HttpError(400, "limit must be an integer")
    limit = min(max(raw_limit, 1), 500)
    with services().database.transaction() as session:
        rows = session.scalars(query.limit(limit)).all()
        return jsonify({"events": [describe(row) for row in rows]})


# Ids past 2^31-1 (the column) match no route: 404, never a database error.
@webhooks_bp.post("/events/<int(max=2147483647):event_id>/retry")
@require_admin_key
def retry_event(event_id: int) -> tuple[Response, int]:
    """Set a delivery back to PENDING and queue it again (a COMPLETED one is applied at most once anyway)."""
    with services().database.transaction() as session:
        row = session.get(WebhookEvent, event_id, with_for_update=True)
        if row is None:
            raise HttpError(404, f"no webhook event {event_id}")
        if row.status == WebhookStatus.COMPLETED:
            raise HttpError(409, f"webhook event {event_id} is already COMPLETED")
        row.status = WebhookStatus.PENDING
        row.error = None
        described = describe(row)
    queued = queue_processing(event_id)
    return jsonify({**described, "queued": queued}), 202
