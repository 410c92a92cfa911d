"""The secret that signs stream tokens: SECRET_KEY, never anything derived from the API keys.

A secret derived from the keys would let anyone holding one token test key guesses offline.
Without SECRET_KEY (development only: production refuses to start), the first gateway process
makes a random secret and stores it in Redis, so every process signs and checks alike; if Redis
cannot be reached the process uses a secret of its own, and its tokens work only there.
"""

from __future__ import annotations

import logging
import secrets

import redis

from shared.config import Settings
from shared.constants import DEV_TOKEN_SECRET

log = logging.getLogger(__name__)


def token_secret(settings: Settings, client: redis.Redis) -> str:
    if settings.secret_key:
        return settings.secret_key
    try:
        client.set(DEV_TOKEN_SECRET, secrets.token_urlsafe(48), nx=True)
        shared = client.get(DEV_TOKEN_SECRET)
    except redis.RedisError as exc:
        log.warning("SECRET_KEY is empty and Redis is unreachable (%s): stream tokens of this process work "
                    "only here; set SECRET_KEY", exc.__class__.__name__)
        return secrets.token_urlsafe(48)
    log.warning("SECRET_KEY is empty: stream tokens are signed with a random secret kept in Redis "
                "(development only; production refuses to start without SECRET_KEY)")
    return shared.decode() if isinstance(shared, bytes) else str(shared)
