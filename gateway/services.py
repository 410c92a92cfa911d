"""The gateway's parts, built once by the app factory (gateway/app.py) and reached through ``services()``.

Views, probes and gunicorn's hooks take what they need from here; nothing else builds a
database, a Redis pool, a bus, a hub or a task client.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gevent
import redis
from flask import Flask, current_app

from gateway.loops import every, spawn_supervised
from gateway.totals import PendingCounts

if TYPE_CHECKING:
    from celery import Celery
    from prometheus_client.registry import CollectorRegistry

    from gateway.auth import Authenticator
    from gateway.hub import Hub
    from gateway.stream_limits import StreamLimits
    from shared.config import Settings
    from shared.database import Database
    from shared.event_bus import EventBus

EXTENSION = "rakuda"


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: redis.Redis  # the command pool every part shares
    database: Database
    bus: EventBus
    auth: Authenticator
    hub: Hub
    stream_limits: StreamLimits
    task_client: Celery  # sends tasks by name (the gateway never imports tasks/)
    metrics: CollectorRegistry
    counts: PendingCounts = field(default_factory=PendingCounts, compare=False)  # sent by the upkeep
    _upkeep: list[gevent.Greenlet] = field(default_factory=list, compare=False)

    def start(self) -> None:
        """Start the background work: the hub's loops, and the upkeep beside them.

        The one rule: this runs in gunicorn's ``post_worker_init`` (gateway/gunicorn_conf.py)
        and nowhere else, so it always runs after the gevent worker has forked and patched
        the process, once per worker, before the worker takes its first request. An app made
        anywhere else (Flask's test client, a script, a process without gevent) is never
        started: its loops would block a thread without gevent. Its routes still answer from
        the parts as built (status, stats, the JSON API); ``/events`` needs gunicorn's socket.

        The upkeep: every report interval, this process's snapshot and deliveries are reported
        (``Hub.report``), the addresses other processes blocked taken in
        (``Authenticator.refresh_blocked``), its stream leases renewed (``StreamLimits.renew``),
        and the counts of the requests since sent (``counts``). One loop runs them one after
        another, so the periodic work holds one connection of the command pool, not one per job.
        """
        if self._upkeep or self.hub.stopped:
            return
        self.hub.start()
        self._upkeep.extend(spawn_supervised([every(self.settings.report_interval_s, self.hub.report,
                                                    self.auth.refresh_blocked, self.stream_limits.renew,
                                                    self.flush_counts)]))

    @property
    def started(self) -> bool:
        return bool(self._upkeep)

    def flush_counts(self) -> None:
        self.counts.flush(self.redis)

    def stop(self) -> None:
        """Close every stream and stop the background work (the worker is stopping)."""
        gevent.killall(self._upkeep, block=True, timeout=2)  # first: no pass reports beside the hub's last
        self._upkeep.clear()
        if self.hub.running:
            self.hub.stop()
        with contextlib.suppress(redis.RedisError):
            self.flush_counts()  # what the last interval counted

    def close(self) -> None:
        """Let go of connections (an app made for a test, at its end)."""
        self.database.dispose()
        self.task_client.close()
        self.redis.close()


def install(app: Flask, parts: Services) -> None:
    app.extensions[EXTENSION] = parts


def services_of(app: Flask) -> Services:
    parts: Services = app.extensions[EXTENSION]
    return parts


def services_in(app: object) -> Services | None:
    """The parts of ``app`` when it is a gateway made by create_app (gunicorn may serve another app)."""
    parts = getattr(app, "extensions", {}).get(EXTENSION)
    return parts if isinstance(parts, Services) else None


def services() -> Services:
    """The current app's parts (inside a request or an app context)."""
    return services_of(current_app)
