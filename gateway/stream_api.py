"""``/api/realtime``: the event stream, its status and statistics, tokens, a test event."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from flask import Blueprint, Response, jsonify, request

from gateway import cluster
from gateway.auth import TOKEN_COOKIE, require_admin_key, require_api_key
from gateway.errors import HttpError
from gateway.hub import types_for_channels
from gateway.params import ascii_int
from gateway.services import services
from gateway.stream_gate import take_place
from gateway.stream_session import StreamRequest, StreamSession
from shared.constants import CHANNEL_NAMES, EVENT_CHANNELS
from shared.consumer import group_status
from shared.exceptions import PublishError
from shared.realtime import RealTimeEvent

log = logging.getLogger(__name__)

realtime_bp = Blueprint("realtime", __name__, url_prefix="/api/realtime")
health_bp = Blueprint("health", __name__)


def redis_reachable(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def parse_channels(raw: str | None) -> list[str]:
    """``inventory,orders`` → full channel names; 400 naming the unknown ones."""
    if raw is None or not raw.strip():
        return sorted(EVENT_CHANNELS.values())
    names = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [n for n in names if n not in CHANNEL_NAMES and n not in CHANNEL_NAMES.values()]
    if unknown:
        raise HttpError(400, f"unknown channel(s): {', '.join(unknown)}",
                        allowed=sorted(CHANNEL_NAMES))
    return sorted({CHANNEL_NAMES.get(n, n) for n in names})


@realtime_bp.get("/events")
def events() -> Response:
    # The checks and a place in the stream limits; the protocol itself is gateway/stream_session.py.
    parts = services()
    if not parts.settings.realtime_enabled:
        raise HttpError(503, "realtime is disabled (REALTIME_ENABLED=false)")
    identity = parts.auth.authenticate(allow_token=True)
    channels = parse_channels(request.args.get("channels"))
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        raise HttpError(500, "the event stream needs gunicorn's gevent worker (gateway/gunicorn_conf.py)")
    place = take_place(parts.hub, parts.stream_limits, identity.key_fingerprint, request.remote_addr or "unknown")
    session = StreamSession(parts.hub, StreamRequest(
        types=types_for_channels(channels), channels=[c.rsplit(":", 1)[1] for c in channels],
        last_event_id=request.headers.get("Last-Event-ID") or request.args.get("lastEventId"), sock=sock,
        chunked=request.environ.get("SERVER_PROTOCOL", "HTTP/1.0") >= "HTTP/1.1", remote=request.remote_addr or "",
    ))
    response = Response(session.run(), mimetype="text/event-stream")
    response.call_on_close(lambda: parts.stream_limits.release(place))  # also when the stream never started
    response.headers["Cache-Control"] = "no-cache, no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@realtime_bp.post("/token")
@require_api_key
def token() -> Response:
    auth = services().auth
    presented = request.headers.get("X-API-Key") or request.headers.get("Authorization", "").partition(" ")[2]
    value = auth.issue_token(auth.valid_key(presented.strip()) or "")
    settings = services().settings
    ttl = settings.token_ttl_s
    response = jsonify({"token": value, "expiresIn": ttl, "cookie": TOKEN_COOKIE})
    response.set_cookie(TOKEN_COOKIE, value, max_age=ttl, httponly=True, samesite="Strict",
                        path="/api/realtime", secure=request.is_secure or settings.rakuda_env == "production")
    return response


@realtime_bp.get("/status")
@require_api_key
def status() -> Response:
    settings = services().settings
    hub = services().hub
    own = hub.snapshot()
    # The reader's view first: with Redis cut off, a PING would wait out the socket timeout.
    # Before the reader's first read (a worker that has just started) the PING alone decides.
    reachable = hub.reader.redis_ok is not False and redis_reachable(hub.redis)
    try:
        snapshots = cluster.live_snapshots(hub.redis, own) if reachable else [own]
    except redis.RedisError:
        snapshots = [own]
    totals = cluster.add_up(snapshots)
    try:
        groups = group_status(hub.redis) if reachable else []
    except redis.RedisError:
        groups = []
    return jsonify({
        "enabled": settings.realtime_enabled,
        "redisReachable": reachable,
        "redisError": "" if reachable else (hub.reader.redis_error or "PING failed"),
        "redisMaxmemoryPolicy": hub.reader.redis_policy,
        "redisSentinel": {"master": settings.redis_sentinel_master,
                          "sentinels": list(settings.redis_sentinels)} if settings.redis_sentinels else None,
        "consumerGroups": groups,
        "activeConnections": totals["connections"]["active"],
        "totalConnections": totals["connections"]["total"],
        "peakConnections": totals["connections"]["peak"],
        "heartbeatInterval": settings.heartbeat_interval_ms,
        "debounceWindow": settings.debounce_window_ms,
        "debounceWindows": settings.debounce_windows,
        "processCount": len(snapshots),
        "process": _process_view(own),
        "processes": [_process_view(s) for s in snapshots],
    })


def _process_view(snap: dict[str, Any]) -> dict[str, Any]:
    return {
        "processId": snap["processId"],
        "pid": snap["pid"],
        "uptime": snap["uptime"],
        "redisReachable": snap["redisReachable"],
        "activeConnections": snap["connections"]["active"],
        "totalConnections": snap["connections"]["total"],
    }


@realtime_bp.get("/stats")
@require_api_key
def stats() -> Response:
    raw_days = request.args.get("days", "7")
    days_wanted = ascii_int(raw_days)
    if days_wanted is None or not 1 <= days_wanted <= 90:
        raise HttpError(400, f"days must be an integer from 1 to 90, got {raw_days!r}", parameter="days")
    hub = services().hub
    own = hub.snapshot()
    try:
        snapshots = cluster.live_snapshots(hub.redis, own)
        days = cluster.day_history(hub.redis, days_wanted)
    except redis.RedisError as exc:
        log.warning("statistics unavailable: Redis unreachable (%s)", exc)
        raise HttpError(503, "statistics need Redis, which is unreachable") from None
    totals = cluster.add_up(snapshots)
    today = days[0]["types"] if days else {}
    for event_type, counters in totals["types"].items():
        counters["publishedToday"] = today.get(event_type, {}).get("published", 0)
    return jsonify({**totals, "days": days, "generatedAt": time.time()})


@realtime_bp.get("/connections")
@require_admin_key
def connections() -> Response:
    hub = services().hub
    own = hub.snapshot(with_connections=True)
    try:
        snapshots = cluster.live_snapshots(hub.redis, own)
    except redis.RedisError:
        snapshots = [own]
    listed, total = [], 0
    for snap in snapshots:
        total += snap["connections"]["active"]
        for conn in snap.get("connectionList", []):
            listed.append({**conn, "processId": snap["processId"]})
    return jsonify({"total": total, "listed": len(listed), "truncated": len(listed) < total,
                    "connections": listed})


@realtime_bp.post("/test")
@require_admin_key
def publish_test_event() -> tuple[Response, int]:
    bus = services().bus
    event = RealTimeEvent.create(
        "LISTING_UPDATE", f"test-{int(time.time() * 1000)}", "updated",
        {"test": True, "message": "test event from POST /api/realtime/test"},
    )
    try:
        bus_id = bus.publish(EVENT_CHANNELS["LISTINGS"], event)
    except PublishError as exc:
        log.warning("test event not published: %s", exc)
        raise HttpError(503, "the test event could not be published (Redis unreachable); try again") from None
    body = event.model_dump(mode="json", exclude_none=True)
    body["id"] = bus_id
    body["published"] = bus_id is not None
    return jsonify(body), 201


@health_bp.get("/api/health")
def health() -> tuple[Response, int]:
    parts = services()
    ok = redis_reachable(parts.redis)
    return jsonify({"status": "ok" if ok else "degraded", "redisReachable": ok,
                    "realtimeEnabled": parts.settings.realtime_enabled}), 200
