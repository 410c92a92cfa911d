"""How this project connects to Redis: one bounded, blocking pool per client object."""

from __future__ import annotations

import redis


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
