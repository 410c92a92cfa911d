"""How this project connects to Redis: one bounded, blocking pool per client object.

With ``REDIS_SENTINELS`` set, every client (the bus, the gateway's reader and commands, the
beat lock) asks the sentinels for the current primary of ``REDIS_SENTINEL_MASTER`` on each
new connection, so a failover needs no restart: a connection to the old primary fails, and
the next one goes to the new primary. ``REDIS_URL`` then only gives the database number and
the password.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from shared.config import Settings
from shared.exceptions import ConfigError

log = logging.getLogger(__name__)

SENTINEL_TIMEOUT_S = 1.0


def redis_from_url(
    url: str, *, max_connections: int = 20, socket_timeout: float | None = 5.0, client_name: str | None = None
) -> redis.Redis:
    """A client whose pool waits for a free connection instead of failing past its size.

    redis-py 8's default pool raises past 100 connections; a gevent server with hundreds of
    greenlets needs callers to queue, not fail.
    """
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=socket_timeout or 5.0,
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        client_name=client_name,  # shows in CLIENT LIST: who holds which connection
    )
    return redis.Redis(connection_pool=pool)


class BlockingSentinelConnectionPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """The sentinel-managed pool, waiting for a free connection like ``redis_from_url``'s."""


def parse_sentinels(entries: tuple[str, ...]) -> list[tuple[str, int]]:
    """``("10.0.0.5:26379", "[::1]:26380")`` → [(host, port), ...]; ConfigError naming a bad one."""
    out = []
    for entry in entries:
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("REDIS_SENTINELS", f"expected host:port, got {entry!r}")
        out.append((host, int(port)))
    return out


def redis_for(
    settings: Settings, *, max_connections: int = 20, socket_timeout: float | None = 5.0,
    client_name: str | None = None,
) -> redis.Redis:
    """A client for this deployment's Redis: REDIS_URL, or the Sentinel-managed primary."""
    if not settings.redis_sentinels:
        return redis_from_url(settings.redis_url, max_connections=max_connections,
                              socket_timeout=socket_timeout, client_name=client_name)
    parts = urlsplit(settings.redis_url)
    db = int(parts.path.lstrip("/") or 0)
    auth: dict[str, Any] = {}
    if parts.password:
        auth["password"] = unquote(parts.password)
    if parts.username:
        auth["username"] = unquote(parts.username)
    sentinel = Sentinel(
        parse_sentinels(settings.redis_sentinels),
        socket_timeout=SENTINEL_TIMEOUT_S,
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S},
    )
    client: redis.Redis = sentinel.master_for(
        settings.redis_sentinel_master,
        connection_pool_class=BlockingSentinelConnectionPool,
        db=db,
        max_connections=max_connections,
        timeout=socket_timeout or 5.0,
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        client_name=client_name,
        **auth,
    )
    return client


def broker_url(settings: Settings) -> str:
    """Celery's broker: CELERY_BROKER_URL, or kombu's ``sentinel://`` list, or REDIS_URL."""
    if settings.celery_broker_url or not settings.redis_sentinels:
        return settings.broker_url
    parts = urlsplit(settings.redis_url)
    credentials = parts.netloc.rpartition("@")[0]
    prefix = credentials + "@" if credentials else ""
    db = parts.path.lstrip("/") or "0"
    return ";".join(f"sentinel://{prefix}{host}:{port}/{db}"
                    for host, port in parse_sentinels(settings.redis_sentinels))


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """What kombu's Sentinel transport needs besides the URL (nothing without Sentinel)."""
    if settings.celery_broker_url or not settings.redis_sentinels:
        return {}
    return {"master_name": settings.redis_sentinel_master,
            "sentinel_kwargs": {"socket_timeout": SENTINEL_TIMEOUT_S}}


def eviction_policy(client: redis.Redis) -> str | None:
    """Redis's ``maxmemory-policy`` (from INFO, which managed Redis services allow), or None."""
    value = client.info("memory").get("maxmemory_policy")
    return str(value) if value is not None else None


def warn_unless_noeviction(client: redis.Redis, who: str) -> str | None:
    """Log a warning when Redis may evict keys (the history, its epoch); returns the policy."""
    try:
        policy = eviction_policy(client)
    except redis.RedisError as exc:
        log.warning("%s: cannot read Redis's maxmemory-policy (%s)", who, exc)
        return None
    if policy is not None and policy != "noeviction":
        log.warning("%s: Redis maxmemory-policy is %r: under memory pressure Redis may evict the event "
                    "history or its epoch, and resuming clients would miss events or be reset. "
                    "Set maxmemory-policy noeviction.", who, policy)
    return policy
