"""Probes for orchestrators: ``/api/health/live`` (the process answers) and ``/ready`` (it can serve).

Both are public and cheap: a PING, a ``SELECT 1`` and a look at the hub's loops, each with a
short timeout, so a probe never hangs on what it is checking.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.hub import Hub
from gateway.services import services

probes_bp = Blueprint("probes", __name__, url_prefix="/api/health")


@probes_bp.get("/live")
def live() -> Response:
    """The process answers requests."""
    return jsonify({"status": "alive"})


def readiness(hub: Hub, database: Any) -> dict[str, bool]:
    """What a gateway needs to serve: Redis, the database and the hub's stream reader."""
    checks = {"redis": True, "database": True, "streamReader": hub.loops_alive}
    try:
        hub.redis.ping()
    except redis.RedisError:
        checks["redis"] = False
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        checks["database"] = False
    return checks


@probes_bp.get("/ready")
def ready() -> tuple[Response, int]:
    """200 when Redis, the database and the stream reader are all there; 503 naming what is missing."""
    parts = services()
    checks = readiness(parts.hub, parts.database)
    missing = [name for name, ok in checks.items() if not ok]
    if missing:
        return jsonify({"status": "not ready", "missing": missing, "checks": checks}), 503
    return jsonify({"status": "ready", "checks": checks}), 200
