"""The Flask app factory: one isolated gateway per call (its own settings, Redis pool, database, hub)."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import request_ids, security_headers
from gateway.api import api_bp
from gateway.api_docs import docs_bp
from gateway.auth import Authenticator
from gateway.dashboard import dashboard_bp
from gateway.errors import HttpError, render
from gateway.health import probes_bp
from gateway.hub import Hub
from gateway.notifications import notifications_bp
from gateway.prometheus import build_registry, count_webhook_outcome, metrics_bp, outbox_unsent
from gateway.services import Services, install
from gateway.stream_api import health_bp, realtime_bp
from gateway.stream_limits import StreamLimits
from gateway.task_client import make_task_client
from gateway.webhooks import webhooks_bp
from shared.config import Settings
from shared.database import Database
from shared.event_bus import EventBus
from shared.production import refuse_to_start_if_unsafe
from shared.redis_client import redis_for

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """The one wiring point: settings, Redis, database, bus, hub, task client and metrics, each built once.

    Views reach them through ``gateway.services.services()``; the background work starts in
    gunicorn's worker (``Services.start``), never here.
    """
    settings = settings or Settings.from_env()
    refuse_to_start_if_unsafe(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max(settings.webhook_max_bytes, 64 * 1024)
    install(app, build_services(settings))

    app.register_blueprint(health_bp)
    app.register_blueprint(realtime_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(probes_bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(docs_bp)
    app.after_request(count_webhook_outcome)
    request_ids.install(app)
    security_headers.install(app)

    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies)
    app.register_error_handler(HttpError, render)

    @app.errorhandler(HTTPException)
    def http_error_as_json(exc: HTTPException) -> Response:
        if not request.path.startswith("/api/"):
            return exc  # type: ignore[return-value]
        return render(HttpError(exc.code or 500, exc.description or exc.name))

    @app.errorhandler(Exception)
    def failure_as_json(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render(HttpError(500, "internal error (logged on the server)"))

    return app


def build_services(settings: Settings) -> Services:
    """Each part once, in dependency order; the engine and the pools connect on first use."""
    commands = redis_for(settings, max_connections=settings.redis_command_pool_size, client_name="rakuda-gateway")
    commands.connection_pool.timeout = settings.redis_command_pool_wait_s  # type: ignore[attr-defined]
    bus = EventBus()
    bus.initialize(settings, client=commands)
    database = Database().initialize(settings.database_url)
    hub = Hub(settings, commands)
    return Services(
        settings=settings, redis=commands, database=database, bus=bus, auth=Authenticator(settings, commands),
        hub=hub, stream_limits=StreamLimits(settings, commands), task_client=make_task_client(settings),
        metrics=build_registry(hub, lambda: outbox_unsent(database)),
    )
