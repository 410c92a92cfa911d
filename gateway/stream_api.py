"""``/api/realtime``: the event stream, its status and statistics, tokens, a test event."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import gevent.monkey
import redis
from flask import Blueprint, Response, current_app, jsonify, request

from gateway import cluster, messages, sse
from gateway.admission import retry_for_client
from gateway.auth import TOKEN_COOKIE, get_auth, require_admin_key, require_api_key
from gateway.errors import HttpError
from gateway.hub import Hub, types_for_channels
from gateway.params import ascii_int
from gateway.stream_limits import StreamLimits
from gateway.totals import DropReason
from shared.config import Settings
from shared.constants import CHANNEL_NAMES, EVENT_CHANNELS
from shared.consumer import group_status
from shared.event_bus import EventBus
from shared.exceptions import PublishError
from shared.realtime import RealTimeEvent

log = logging.getLogger(__name__)

realtime_bp = Blueprint("realtime", __name__, url_prefix="/api/realtime")
health_bp = Blueprint("health", __name__)
UNKNOWN_RESUME = "the requested Last-Event-ID is unknown or older than the history"


def _settings() -> Settings:
    settings: Settings = current_app.config["RAKUDA_SETTINGS"]
    return settings


def get_hub() -> Hub:
    """The process's hub, started on first use when gevent runs this process (gunicorn's worker).

    In a process without gevent's patches (Flask's test client, a script) its loops would block
    the caller's thread for ever, so it is left unstarted there; status and stats still answer.
    """
    hub: Hub = current_app.extensions["rakuda_hub"]
    if gevent.monkey.is_module_patched("socket"):
        hub.start()
    return hub


def get_stream_limits(hub: Hub) -> StreamLimits:
    limits: StreamLimits | None = current_app.extensions.get("rakuda_stream_limits")
    if limits is None:
        limits = current_app.extensions["rakuda_stream_limits"] = StreamLimits(_settings(), hub.redis)
        hub.on_report.append(limits.renew)
    return limits


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
    settings = _settings()
    if not settings.realtime_enabled:
        raise HttpError(503, "realtime is disabled (REALTIME_ENABLED=false)")
    identity = get_auth().authenticate(allow_token=True)
    channels = parse_channels(request.args.get("channels"))
    hub = get_hub()
    if hub.stopped:  # accepted just before this worker stopped accepting: the next try lands elsewhere
        raise HttpError(503, "this gateway process is shutting down", headers={"Retry-After": "0"})
    limits = get_stream_limits(hub)
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        raise HttpError(500, "the event stream needs gunicorn's gevent worker (gateway/gunicorn_conf.py)")
    chunked = request.environ.get("SERVER_PROTOCOL", "HTTP/1.0") >= "HTTP/1.1"
    last_event_id = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")

    try:
        hub.ensure_position()
    except redis.RedisError as exc:
        log.warning("stream refused: Redis unreachable (%s)", exc)
        raise HttpError(503, "Redis is unreachable, try again shortly", headers={"Retry-After": "2"}) from None
    # The key's and the address's counts are checked (and a place taken) in one Redis script.
    place = limits.acquire(identity.key_fingerprint, request.remote_addr or "unknown")
    # Checked after the last Redis call of this view: nothing yields between here and the
    # registration in stream(), so concurrent connects cannot slip past the limit.
    if len(hub.clients) >= settings.max_connections:
        limits.release(place)
        hub.drops[DropReason.LIMIT] += 1
        raise HttpError(503, f"this process holds its maximum of {settings.max_connections} streams",
                        headers={"Retry-After": "5"})
    types = types_for_channels(channels)
    remote = request.remote_addr or ""
    hello = {
        "channels": [c.rsplit(":", 1)[1] for c in channels],
        "heartbeatInterval": settings.heartbeat_interval_ms,
        "debounceWindow": settings.debounce_window_ms,
        "debounceWindows": settings.debounce_windows,
        "processId": hub.process_id,
    }

    def stream() -> Iterator[bytes]:
        # Registered only once gunicorn runs this generator, so the ``finally`` always
        # unregisters it before gunicorn closes the socket (and its fd can be reused).
        client = hub.connect(types, sock, chunked=chunked, remote=remote)
        resume_turn = contextlib.ExitStack()  # resumes take turns, in arrival order (gateway/admission.py)
        try:
            if last_event_id:
                resume_turn.enter_context(hub.resume_turns.turn())
            plan = hub.plan_resume(last_event_id, client)
            retry = retry_for_client(settings.retry_ms, settings.retry_spread_ms)
            # `connected` carries a cursor too, so a client that loses this stream before its first
            # event or heartbeat still resumes from here instead of reconnecting without an id (and
            # missing what was published in between). Resuming, the cursor is the client's own.
            first = messages.json_message(
                "connected", {"connectionId": client.id, **hello, "resumed": plan.resumed}, retry=retry,
                cursor=plan.after if plan.after is not None else hub.reset_cursor(client), epoch=hub.epoch,
            )
            if plan.reset:
                first += messages.json_message(
                    "reset", {"reason": plan.reason or UNKNOWN_RESUME, "lastEventId": last_event_id},
                    cursor=hub.reset_cursor(client), epoch=hub.epoch,
                )
            yield first  # gunicorn writes the headers and this at once; from here the hub writes
            # gunicorn sets TCP_NODELAY: one packet per write. A stream wants the kernel to
            # merge back-to-back messages (2.3x the messages/s at 1k clients, docs/benchmarks.md);
            # the first write after a pause still leaves at once.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            # A peer that vanished without closing (sleep, NAT drop) leaves our heartbeat
            # unacknowledged: the kernel gives up after one heartbeat interval (or the send
            # timeout, if longer: a slow reader is ours to drop, and count), and the waiting
            # recv ends the stream.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                            max(settings.heartbeat_interval_ms, settings.send_timeout_ms))
            if plan.after is not None:
                try:
                    for message in hub.replay(client, plan):
                        client.write_now(message)
                except redis.RedisError as exc:
                    log.warning("replay for stream %s failed: %s", client.id, exc)
                    reset = messages.json_message("reset", {"reason": "history unavailable"})
                    client.write_now(sse.chunk(reset) if client.chunked else reset)
            resume_turn.close()
            client.release()
            client.wait_closed()
        finally:
            resume_turn.close()
            client.close("stream ended")

    response = Response(stream(), mimetype="text/event-stream")
    response.call_on_close(lambda: limits.release(place))  # also when the stream never started
    response.headers["Cache-Control"] = "no-cache, no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@realtime_bp.post("/token")
@require_api_key
def token() -> Response:
    auth = get_auth()
    presented = request.headers.get("X-API-Key") or request.headers.get("Authorization", "").partition(" ")[2]
    value = auth.issue_token(auth.valid_key(presented.strip()) or "")
    settings = _settings()
    ttl = settings.token_ttl_s
    response = jsonify({"token": value, "expiresIn": ttl, "cookie": TOKEN_COOKIE})
    response.set_cookie(TOKEN_COOKIE, value, max_age=ttl, httponly=True, samesite="Strict",
                        path="/api/realtime", secure=request.is_secure or settings.rakuda_env == "production")
    return response


@realtime_bp.get("/status")
@require_api_key
def status() -> Response:
    settings = _settings()
    hub = get_hub()
    own = hub.snapshot()
    # The reader's view first: with Redis cut off, a PING would wait out the socket timeout.
    reachable = hub.redis_ok and redis_reachable(hub.redis)
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
        "redisError": "" if reachable else (hub.redis_error or "PING failed"),
        "redisMaxmemoryPolicy": hub.redis_policy,
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
    hub = get_hub()
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
    hub = get_hub()
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
    bus: EventBus = current_app.extensions["rakuda_bus"]
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
    hub: Hub = current_app.extensions["rakuda_hub"]
    ok = redis_reachable(hub.redis)
    return jsonify({"status": "ok" if ok else "degraded", "redisReachable": ok,
                    "realtimeEnabled": _settings().realtime_enabled}), 200
