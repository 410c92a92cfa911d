"""What a production deployment must have set: checked by every process before it starts.

``RAKUDA_ENV=production`` turns the checks on. A gateway, worker, beat or CLI started with a
weak setting refuses to start, with one line naming the setting, instead of running with a
secret anyone could guess.
"""

from __future__ import annotations

from shared.config import Settings

MIN_SECRET_LENGTH = 32
MIN_KEY_LENGTH = 24
KNOWN_WEAK_KEYS = frozenset({"dev-key", "test-key", "changeme", "secret"})


def production_problem(settings: Settings) -> str | None:
    """The first setting that production refuses, as one line; None when all is well (or not production)."""
    if settings.rakuda_env != "production":
        return None
    if len(settings.secret_key) < MIN_SECRET_LENGTH:
        state = "empty" if not settings.secret_key else f"{len(settings.secret_key)} characters"
        return (f"RAKUDA_ENV=production: SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters "
                f"(it is {state}); generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'")
    for name in ("API_KEYS", "ADMIN_API_KEYS"):
        for index, key in enumerate(_keys(settings, name)):
            if key in KNOWN_WEAK_KEYS or len(key) < MIN_KEY_LENGTH:
                why = "a well-known development key" if key in KNOWN_WEAK_KEYS else f"{len(key)} characters"
                return (f"RAKUDA_ENV=production: key #{index + 1} in {name} is {why}; "
                        f"keys must be at least {MIN_KEY_LENGTH} random characters")
    if not settings.api_keys:
        return "RAKUDA_ENV=production: API_KEYS is empty; no one could read the stream"
    return None


def _keys(settings: Settings, name: str) -> tuple[str, ...]:
    return settings.admin_api_keys if name == "ADMIN_API_KEYS" else settings.api_keys


def refuse_to_start_if_unsafe(settings: Settings) -> None:
    """Exit (status 1) with one line on stderr when production settings are unsafe."""
    problem = production_problem(settings)
    if problem is not None:
        raise SystemExit(f"rakuda: refusing to start: {problem}")
