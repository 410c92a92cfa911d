"""API keys, browser stream tokens, and a limit on failed attempts per address.

Keys come in ``X-API-Key`` or ``Authorization: Bearer``, compared in constant time. A
browser's EventSource cannot set headers, so ``POST /api/realtime/token`` trades a key for
a short-lived signed token that the stream accepts as a cookie or a ``token`` parameter:
the key never travels in a URL (the token names it by an HMAC keyed with the token
secret). The token is signed with SECRET_KEY, so it works on
every gateway process and survives a restart.

Two roles: a key in API_KEYS reads (streams, tokens, status, stats, the JSON API, /metrics);
a key in ADMIN_API_KEYS may also change things or see other clients (:func:`require_admin_key`).

Failures and blocks live in Redis only (:mod:`shared.auth_blocks`); each process looks at a
copy of the blocked set at most 2 s old, so a request needs no Redis call of its own.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from flask import request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from gateway.errors import HttpError
from gateway.services import services
from gateway.token_secret import token_secret
from shared.auth_blocks import BlockList
from shared.config import Settings

log = logging.getLogger(__name__)

TOKEN_COOKIE = "rakuda_rt_token"
F = TypeVar("F", bound=Callable[..., Any])


def key_fingerprint(key: str, secret: str) -> str:
    """Names a key inside a token without revealing it (an HMAC, not a bare hash to guess at)."""
    return hmac.new(secret.encode(), b"api-key:" + key.encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Identity:
    """Who a request authenticated as: how, which key (its fingerprint), and whether it is an admin."""

    method: str  # "key" or "token"
    key_fingerprint: str
    admin: bool


class Authenticator:
    def __init__(self, settings: Settings, commands: redis.Redis) -> None:
        self.settings = settings
        self.redis = commands
        self._keys = [(k.encode(), False) for k in settings.api_keys if k not in settings.admin_api_keys]
        self._keys += [(k.encode(), True) for k in settings.admin_api_keys]
        self._secret = token_secret(settings, commands)
        self._fingerprints = {self.fingerprint(k) for k in (*settings.api_keys, *settings.admin_api_keys)}
        self._tokens = URLSafeTimedSerializer(self._secret, salt="rakuda-realtime-stream")
        self.blocks = BlockList(settings, commands)

    def fingerprint(self, key: str) -> str:
        """Names a key inside a token or a record without revealing it (an HMAC under the token secret)."""
        return key_fingerprint(key, self._secret)

    # --- checks ---
    def valid_key(self, presented: str | None) -> str | None:
        """The key if it is one of API_KEYS or ADMIN_API_KEYS (every key compared, in constant time)."""
        found = self._match(presented)
        return found[0] if found else None

    def _match(self, presented: str | None) -> tuple[str, bool] | None:
        if not presented:
            return None
        candidate = presented.encode()
        match = None
        for key, admin in self._keys:
            if hmac.compare_digest(candidate, key):
                match = (key.decode(), admin)
        return match

    def issue_token(self, key: str) -> str:
        return self._tokens.dumps({"k": self.fingerprint(key)})

    def token_fingerprint(self, token: str) -> str | None:
        """The fingerprint of the key a genuine, unexpired token names; None for any other token."""
        try:
            data = self._tokens.loads(token, max_age=self.settings.token_ttl_s)
        except SignatureExpired:
            raise HttpError(401, "token expired: request a new one from POST /api/realtime/token",
                            code="token_expired") from None
        except BadSignature:
            return None
        if isinstance(data, dict) and data.get("k") in self._fingerprints:
            return str(data["k"])
        return None

    def token_is_valid(self, token: str) -> bool:
        return self.token_fingerprint(token) is not None

    def authenticate(self, allow_token: bool = False, admin: bool = False) -> Identity:
        """Check the current request; raises HttpError 401/403/429. Returns who it is."""
        address = request.remote_addr or "unknown"
        until = self.blocks.blocked_until(address)
        if until is not None:
            raise HttpError(429, "too many failed attempts from this address",
                            headers={"Retry-After": str(int(until - time.time()) + 1)})
        if not self._keys:
            raise HttpError(401, "no API keys are configured on this server (set API_KEYS)")
        presented = request.headers.get("X-API-Key")
        bearer = False
        if presented is None:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and value:
                presented, bearer = value.strip(), True
        identity: Identity | None = None
        if presented is not None:
            found = self._match(presented)
            if found:
                identity = Identity("key", self.fingerprint(found[0]), found[1])
            elif bearer and (named := self._bearer_token(presented)) is not None:
                # A genuine stream token sent as Bearer is a mistake, not a guess: never a failure.
                if not allow_token:
                    raise HttpError(401, "a stream token opens only the event stream; send an API key")
                identity = Identity("token", named, False)
            else:
                self.record_failure(address)
                raise HttpError(401, "invalid API key")
        elif allow_token:
            token = request.args.get("token") or request.cookies.get(TOKEN_COOKIE)
            if token:
                named = self.token_fingerprint(token)
                if named is None:
                    self.record_failure(address)
                    raise HttpError(401, "invalid token")
                identity = Identity("token", named, False)
        if identity is None:
            raise HttpError(401, "missing API key: send X-API-Key or Authorization: Bearer"
                            + (", or a token from POST /api/realtime/token" if allow_token else ""))
        if admin and not identity.admin:
            raise HttpError(403, "this route needs an admin key (ADMIN_API_KEYS)", role="read")
        return identity

    def _bearer_token(self, value: str) -> str | None:
        try:
            return self.token_fingerprint(value)
        except HttpError:
            return None  # expired: still a token this server issued

    # --- failure limit ---
    def record_failure(self, address: str) -> None:
        try:
            failures, until = self.blocks.record_failure(address)
        except redis.RedisError as exc:
            log.warning("failed attempt from %s not counted (Redis: %s)", address, exc.__class__.__name__)
            return
        if until:
            log.warning("address %s blocked for %ds after %d failed attempts",
                        address, round(until - time.time()), failures)

    def refresh_blocked(self) -> None:
        """Take the blocks every process recorded (the upkeep's job, gateway/services.py; also done by
        any request once the copy is 2 s old)."""
        self.blocks.refresh()


def require_api_key(view: F) -> F:
    """Decorator: the view runs only for a request with a valid API key."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        services().auth.authenticate(allow_token=False)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def require_admin_key(view: F) -> F:
    """Decorator: the view runs only for a key in ADMIN_API_KEYS (a read key gets 403)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        services().auth.authenticate(allow_token=False, admin=True)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
