"""One settings object, read from the environment (and ``.env``), a default for every value.

A wrong value raises :class:`ConfigError` naming the key, at start-up rather than at the
first request that needs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from shared.constants import TYPE_CHANNELS
from shared.exceptions import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(key, f"expected true or false, got {raw!r}")


def _int(key: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(key, f"expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(key, f"must be at least {minimum}, got {value}")
    return value


def _float(key: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(key, f"expected a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(key, f"must not be negative, got {value}")
    return value


def _list(_key: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _host_ports(key: str, raw: str) -> tuple[str, ...]:
    entries = _list(key, raw)
    for entry in entries:
        host, sep, port = entry.rpartition(":")
        if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(key, f"expected host:port[,host:port...], got {entry!r}")
    return entries


def _windows(key: str, raw: str) -> tuple[str, ...]:
    """``ORDER_RECEIVED:0,PRICE_CHANGE:2000`` → ("ORDER_RECEIVED:0", "PRICE_CHANGE:2000"), checked."""
    out: dict[str, int] = {}
    for part in _list(key, raw):
        event_type, sep, ms = part.partition(":")
        event_type = event_type.strip().upper()
        if not sep or event_type not in TYPE_CHANNELS:
            raise ConfigError(key, f"expected TYPE:ms pairs with TYPE one of {', '.join(TYPE_CHANNELS)}, got {part!r}")
        out[event_type] = _int(key, ms)
    return tuple(f"{t}:{ms}" for t, ms in out.items())


def _str(_key: str, raw: str) -> str:
    return raw.strip()


def _choice(key: str, raw: str, choices: tuple[str, ...] = ()) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(key, f"expected one of {', '.join(choices)}, got {raw!r}")
    return value


def setting(env: str, default: Any, parse: Callable[..., Any] = _str, **kw: Any) -> Any:
    """A dataclass field read from environment variable ``env``."""
    return field(default=default, metadata={"env": env, "parse": parse, "kw": kw})


@dataclass(frozen=True)
class Settings:
    # --- Redis and the realtime stream ---
    redis_url: str = setting("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis_sentinels: tuple[str, ...] = setting("REDIS_SENTINELS", (), _host_ports)
    redis_sentinel_master: str = setting("REDIS_SENTINEL_MASTER", "")
    realtime_enabled: bool = setting("REALTIME_ENABLED", True, _bool)
    heartbeat_interval_ms: int = setting("SSE_HEARTBEAT_INTERVAL", 30000, _int, minimum=10)
    debounce_window_ms: int = setting("SSE_DEBOUNCE_WINDOW", 500, _int)
    debounce_window_overrides: tuple[str, ...] = setting("SSE_DEBOUNCE_WINDOWS", ("ORDER_RECEIVED:0",), _windows)
    batch_max_events: int = setting("SSE_BATCH_MAX_EVENTS", 100, _int, minimum=1)
    retry_ms: int = setting("SSE_RETRY", 3000, _int, minimum=0)
    retry_spread_ms: int = setting("SSE_RETRY_SPREAD", 3000, _int)
    resumes_at_once: int = setting("SSE_RESUMES_AT_ONCE", 64, _int, minimum=1)
    send_timeout_ms: int = setting("SSE_SEND_TIMEOUT", 10000, _int, minimum=1)
    client_buffer_bytes: int = setting("SSE_CLIENT_BUFFER", 1048576, _int, minimum=1024)
    max_connections: int = setting("SSE_MAX_CONNECTIONS", 18000, _int, minimum=1)
    history_max_events: int = setting("REALTIME_HISTORY_MAX", 100000, _int, minimum=1)
    history_max_age_s: int = setting("REALTIME_HISTORY_MAX_AGE", 86400, _int, minimum=1)
    report_interval_s: float = setting("REALTIME_REPORT_INTERVAL", 1.0, _float)
    recent_max_events: int = setting("REALTIME_RECENT_MAX_EVENTS", 20000, _int)
    recent_max_age_s: int = setting("REALTIME_RECENT_MAX_AGE", 600, _int)
    history_connections: int = setting("REALTIME_HISTORY_CONNECTIONS", 4, _int, minimum=1)
    redis_command_pool_size: int = setting("REDIS_COMMAND_POOL_SIZE", 20, _int, minimum=1)
    redis_command_pool_wait_s: float = setting("REDIS_COMMAND_POOL_WAIT", 5.0, _float)
    stats_retention_days: int = setting("REALTIME_STATS_RETENTION_DAYS", 30, _int, minimum=1)
    # --- Deployment ---
    rakuda_env: str = setting("RAKUDA_ENV", "development", _choice, choices=("development", "production"))
    # --- Auth ---
    api_keys: tuple[str, ...] = setting("API_KEYS", (), _list)
    secret_key: str = setting("SECRET_KEY", "")
    token_ttl_s: int = setting("REALTIME_TOKEN_TTL", 900, _int, minimum=1)
    auth_max_failures: int = setting("AUTH_MAX_FAILURES", 5, _int, minimum=1)
    auth_block_s: int = setting("AUTH_BLOCK_SECONDS", 900, _int, minimum=1)
    trusted_proxies: int = setting("TRUSTED_PROXIES", 0, _int)
    # --- Roles and abuse limits ---
    admin_api_keys: tuple[str, ...] = setting("ADMIN_API_KEYS", (), _list)
    replay_max_events: int = setting("REALTIME_REPLAY_MAX_EVENTS", 10000, _int, minimum=1)
    max_streams_per_key: int = setting("SSE_MAX_STREAMS_PER_KEY", 1000, _int, minimum=1)
    max_streams_per_address: int = setting("SSE_MAX_STREAMS_PER_ADDRESS", 100, _int, minimum=1)
    new_streams_rate: float = setting("SSE_NEW_STREAMS_PER_ADDRESS_RATE", 10.0, _float)
    new_streams_burst: int = setting("SSE_NEW_STREAMS_PER_ADDRESS_BURST", 100, _int, minimum=1)
    auth_first_block_s: int = setting("AUTH_FIRST_BLOCK_SECONDS", 15, _int, minimum=1)
    auth_max_tracked: int = setting("AUTH_MAX_TRACKED_ADDRESSES", 100000, _int, minimum=1)
    # --- Logs ---
    log_format: str = setting("LOG_FORMAT", "text", _choice, choices=("text", "json"))
    log_level: str = setting("LOG_LEVEL", "info", _choice,
                             choices=("debug", "info", "warning", "error", "critical"))
    # --- Database, Celery, webhooks, pricing (the task pipeline) ---
    database_url: str = setting("DATABASE_URL", "sqlite:///rakuda.db")
    celery_broker_url: str = setting("CELERY_BROKER_URL", "")
    ebay_webhook_secret: str = setting("EBAY_WEBHOOK_SECRET", "")
    ebay_verification_token: str = setting("EBAY_VERIFICATION_TOKEN", "")
    ebay_webhook_endpoint: str = setting("EBAY_WEBHOOK_ENDPOINT", "")
    joom_webhook_secret: str = setting("JOOM_WEBHOOK_SECRET", "")
    webhook_max_bytes: int = setting("WEBHOOK_MAX_BYTES", 262144, _int, minimum=1)
    price_change_threshold_percent: float = setting("PRICE_CHANGE_THRESHOLD_PERCENT", 10.0, _float)
    # --- Beat intervals (seconds) and task tuning ---
    inventory_check_interval_s: float = setting("INVENTORY_CHECK_INTERVAL", 60.0, _float)
    inventory_recheck_after_s: float = setting("INVENTORY_RECHECK_AFTER", 3600.0, _float)
    inventory_batch_size: int = setting("INVENTORY_BATCH_SIZE", 50, _int, minimum=1)
    price_sync_interval_s: float = setting("PRICE_SYNC_INTERVAL", 300.0, _float)
    price_sync_batch_size: int = setting("PRICE_SYNC_BATCH_SIZE", 1000, _int, minimum=1)
    outbox_relay_interval_s: float = setting("OUTBOX_RELAY_INTERVAL", 5.0, _float)
    webhook_sweep_interval_s: float = setting("WEBHOOK_SWEEP_INTERVAL", 30.0, _float)
    webhook_sweep_after_s: float = setting("WEBHOOK_SWEEP_AFTER", 30.0, _float)
    webhook_orphan_after_s: float = setting("WEBHOOK_ORPHAN_AFTER", 3600.0, _float)
    demo_orders_interval_s: float = setting("DEMO_ORDERS_INTERVAL", 0.0, _float)
    celery_visibility_timeout_s: int = setting("CELERY_VISIBILITY_TIMEOUT", 3600, _int, minimum=1)
    beat_lock_ttl_s: float = setting("BEAT_LOCK_TTL", 30.0, _float)
    task_max_retries: int = setting("TASK_MAX_RETRIES", 5, _int)
    task_retry_backoff_s: float = setting("TASK_RETRY_BACKOFF", 2.0, _float)
    task_retry_backoff_max_s: float = setting("TASK_RETRY_BACKOFF_MAX", 300.0, _float)
    # --- Supplier and marketplace clients (empty URL: the seeded sandbox simulator) ---
    supplier_api_url: str = setting("SUPPLIER_API_URL", "")
    marketplace_api_url: str = setting("MARKETPLACE_API_URL", "")
    client_timeout_s: float = setting("CLIENT_TIMEOUT", 10.0, _float)
    sandbox_seed: int = setting("SANDBOX_SEED", 27, _int)
    # --- Durable consumers and the notifier ---
    consumer_claim_after_s: float = setting("CONSUMER_CLAIM_AFTER", 60.0, _float)
    consumer_max_deliveries: int = setting("CONSUMER_MAX_DELIVERIES", 5, _int, minimum=1)
    notify_events: tuple[str, ...] = setting("NOTIFY_EVENTS", ("ORDER_RECEIVED", "INVENTORY_CHANGE"), _list)
    notify_rules_file: str = setting("NOTIFY_RULES_FILE", "")
    notify_price_change_percent: float = setting("NOTIFY_PRICE_CHANGE_PERCENT", 20.0, _float)
    notify_max_attempts: int = setting("NOTIFY_MAX_ATTEMPTS", 6, _int, minimum=1)
    notify_backoff_s: float = setting("NOTIFY_BACKOFF", 1.0, _float)
    notify_backoff_max_s: float = setting("NOTIFY_BACKOFF_MAX", 60.0, _float)
    notify_timeout_s: float = setting("NOTIFY_TIMEOUT", 10.0, _float)
    notify_batch_window_s: float = setting("NOTIFY_BATCH_WINDOW", 10.0, _float)
    notify_sent_ttl_s: int = setting("NOTIFY_SENT_TTL", 7 * 86400, _int, minimum=1)
    notify_dashboard_url: str = setting("NOTIFY_DASHBOARD_URL", "http://127.0.0.1:5000")
    notify_discord_webhook_url: str = setting("NOTIFY_DISCORD_WEBHOOK_URL", "")
    notify_line_channel_token: str = setting("NOTIFY_LINE_CHANNEL_TOKEN", "")
    notify_line_to: str = setting("NOTIFY_LINE_TO", "")
    line_api_url: str = setting("LINE_API_URL", "https://api.line.me")
    notify_webhook_url: str = setting("NOTIFY_WEBHOOK_URL", "")
    notify_webhook_secret: str = setting("NOTIFY_WEBHOOK_SECRET", "")
    notify_escalation_discord_webhook_url: str = setting("NOTIFY_ESCALATION_DISCORD_WEBHOOK_URL", "")
    notify_escalation_line_channel_token: str = setting("NOTIFY_ESCALATION_LINE_CHANNEL_TOKEN", "")
    notify_escalation_line_to: str = setting("NOTIFY_ESCALATION_LINE_TO", "")
    notify_escalation_webhook_url: str = setting("NOTIFY_ESCALATION_WEBHOOK_URL", "")
    notify_escalation_webhook_secret: str = setting("NOTIFY_ESCALATION_WEBHOOK_SECRET", "")
    order_ack_escalate_after: float = setting("ORDER_ACK_ESCALATE_AFTER", 30.0, _float)
    order_ack_minute_s: float = setting("ORDER_ACK_MINUTE_SECONDS", 60.0, _float)

    # --- Exchange rate (empty URL: the sandbox's rates) ---
    fx_rate_url: str = setting("FX_RATE_URL", "")
    fx_rate_interval_s: float = setting("FX_RATE_INTERVAL", 3600.0, _float)
    fx_reprice_threshold_percent: float = setting("FX_REPRICE_THRESHOLD_PERCENT", 1.0, _float)

    def __post_init__(self) -> None:
        if self.redis_sentinels and not self.redis_sentinel_master:
            raise ConfigError("REDIS_SENTINEL_MASTER", "REDIS_SENTINELS is set: name the monitored primary too")

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def debounce_windows(self) -> dict[str, int]:
        """The window of every event type, in ms: SSE_DEBOUNCE_WINDOWS over SSE_DEBOUNCE_WINDOW."""
        windows = {t: self.debounce_window_ms for t in TYPE_CHANNELS}
        for pair in self.debounce_window_overrides:
            event_type, _sep, ms = pair.partition(":")
            windows[event_type] = int(ms)
        return windows

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | None = ".env", **overrides: Any
    ) -> Settings:
        """Settings from ``environ`` (default: os.environ over ``env_file``), then ``overrides``."""
        if environ is None:
            merged = dict(read_env_file(env_file)) if env_file else {}
            merged.update(os.environ)
        else:
            merged = dict(environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f.metadata["env"]
            if key in merged:
                values[f.name] = f.metadata["parse"](key, merged[key], **f.metadata["kw"])
        values.update(overrides)
        return cls(**values)

    def env_items(self) -> dict[str, str]:
        """These settings as environment variables (for starting a subprocess with them)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, tuple):
                value = ",".join(value)
            out[f.metadata["env"]] = str(value)
        return out


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines of a ``.env`` file; comments and blank lines are skipped; missing file: {}."""
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except FileNotFoundError:
        return values
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(key, f"{path}:{number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current
