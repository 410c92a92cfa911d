"""API keys, browser stream tokens, and a limit on failed attempts per address.

Keys come in ``X-API-Key`` or ``Authorization: Bearer``, compared in constant time. A
browser's EventSource cannot set headers, so ``POST /api/realtime/token`` trades a key for
a short-lived signed token that the stream accepts as a cookie or a ``token`` parameter:
the key never travels in a URL (the token names it by an HMAC keyed with the token
secret). The token is signed with SECRET_KEY, so it works on
every gateway process and survives a restart.

Failures are counted in Redis (only failing requests touch Redis); blocked addresses are
refreshed into each process by the hub's reporter, so checking a request needs no Redis call.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from flask import current_app, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from gateway.errors import HttpError
from gateway.token_secret import token_secret
from shared.config import Settings
from shared.constants import AUTH_BLOCKED, AUTH_FAILURES_PREFIX

log = logging.getLogger(__name__)

TOKEN_COOKIE = "rakuda_rt_token"
F = TypeVar("F", bound=Callable[..., Any])


def key_fingerprint(key: str, secret: str) -> str:
    """Names a key inside a token without revealing it (an HMAC, not a bare hash to guess at)."""
    return hmac.new(secret.encode(), b"api-key:" + key.encode(), hashlib.sha256).hexdigest()[:16]


class Authenticator:
    def __init__(self, settings: Settings, commands: redis.Redis) -> None:
        self.settings = settings
        self.redis = commands
        self._keys = [k.encode() for k in settings.api_keys]
        self._secret = token_secret(settings, commands)
        self._fingerprints = {key_fingerprint(k, self._secret) for k in settings.api_keys}
        self._tokens = URLSafeTimedSerializer(self._secret, salt="rakuda-realtime-stream")
        self._blocked: dict[str, float] = {}  # address -> blocked until (epoch seconds)
        self._local_failures: dict[str, list[float]] = {}

    # --- checks ---
    def valid_key(self, presented: str | None) -> str | None:
        """The key if it is one of API_KEYS (every key compared, in constant time)."""
        if not presented:
            return None
        candidate = presented.encode()
        match = None
        for key in self._keys:
            if hmac.compare_digest(candidate, key):
                match = key
        return match.decode() if match else None

    def key_name(self, key: str) -> str:
        """A name for ``key`` fit for logs and records (an HMAC under the token secret)."""
        return key_fingerprint(key, self._secret)

    def issue_token(self, key: str) -> str:
        return self._tokens.dumps({"k": key_fingerprint(key, self._secret)})

    def token_is_valid(self, token: str) -> bool:
        try:
            data = self._tokens.loads(token, max_age=self.settings.token_ttl_s)
        except SignatureExpired:
            raise HttpError(401, "token expired: request a new one from POST /api/realtime/token",
                            code="token_expired") from None
        except BadSignature:
            return False
        return isinstance(data, dict) and data.get("k") in self._fingerprints

    def authenticate(self, allow_token: bool = False) -> str:
        """Check the current request; raises HttpError 401/429. Returns how it authenticated."""
        address = request.remote_addr or "unknown"
        until = self._blocked.get(address)
        if until and until > time.time():
            raise HttpError(429, "too many failed attempts from this address",
                            headers={"Retry-After": str(int(until - time.time()) + 1)})
        if not self._keys:
            raise HttpError(401, "no API keys are configured on this server (set API_KEYS)")
        presented = request.headers.get("X-API-Key")
        if presented is None:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and value:
                presented = value.strip()
        if presented is not None:
            if self.valid_key(presented):
                return "key"
            self.record_failure(address)
            raise HttpError(401, "invalid API key")
        if allow_token:
            token = request.args.get("token") or request.cookies.get(TOKEN_COOKIE)
            if token:
                if self.token_is_valid(token):
                    return "token"
                self.record_failure(address)
                raise HttpError(401, "invalid token")
        raise HttpError(401, "missing API key: send X-API-Key or Authorization: Bearer"
                        + (", or a token from POST /api/realtime/token" if allow_token else ""))

    # --- rate limit ---
    def record_failure(self, address: str) -> None:
        limit, window = self.settings.auth_max_failures, self.settings.auth_block_s
        try:
            key = AUTH_FAILURES_PREFIX + address
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
            failures = pipe.execute()[0]
        except redis.RedisError:
            now = time.time()
            recent = [t for t in self._local_failures.get(address, []) if t > now - window] + [now]
            self._local_failures[address] = recent
            failures = len(recent)
        if failures >= limit:
            until = time.time() + window
            self._blocked[address] = until
            log.warning("address %s blocked for %ss after %d failed attempts", address, window, failures)
            try:
                self.redis.zadd(AUTH_BLOCKED, {address: until})
            except redis.RedisError:
                pass

    def refresh_blocked(self) -> None:
        """Take the addresses other processes blocked (called by the hub's reporter)."""
        now = time.time()
        self.redis.zremrangebyscore(AUTH_BLOCKED, "-inf", now)
        fresh = {
            (a.decode() if isinstance(a, bytes) else a): score
            for a, score in self.redis.zrangebyscore(AUTH_BLOCKED, now, "+inf", withscores=True)
        }
        local = {a: t for a, t in self._blocked.items() if t > now}
        local.update(fresh)
        self._blocked = local


def get_auth() -> Authenticator:
    return current_app.extensions["rakuda_auth"]


def require_api_key(view: F) -> F:
    """Decorator: the view runs only for a request with a valid API key."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        get_auth().authenticate(allow_token=False)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
