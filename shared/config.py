"""One settings object, read from the environment (and ``.env``), a default for every value.

The model is a pydantic-settings ``BaseSettings``: each field names its environment variable,
its type and its bounds. A wrong value raises :class:`ConfigError` naming the variable, at
start-up rather than at the first request that needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dotenv import dotenv_values
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.constants import TYPE_CHANNELS
from shared.exceptions import ConfigError
from shared.setting_types import CommaList, Environment, Flag, HostPorts, LogFormat, LogLevel, TypeWindows


def env(key: str, default: Any, **bounds: Any) -> Any:
    """A field read from environment variable ``key`` (``ge=`` and friends bound it)."""
    return Field(default, validation_alias=key, **bounds)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=True, populate_by_name=True,
        str_strip_whitespace=True, env_file=".env", env_file_encoding="utf-8",
    )

    # --- Redis and the realtime stream ---
    redis_url: str = env("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis_sentinels: HostPorts = env("REDIS_SENTINELS", ())
    redis_sentinel_master: str = env("REDIS_SENTINEL_MASTER", "")
    realtime_enabled: Flag = env("REALTIME_ENABLED", True)
    heartbeat_interval_ms: int = env("SSE_HEARTBEAT_INTERVAL", 30000, ge=10)
    debounce_window_ms: int = env("SSE_DEBOUNCE_WINDOW", 500, ge=0)
    debounce_window_overrides: TypeWindows = env("SSE_DEBOUNCE_WINDOWS", ("ORDER_RECEIVED:0",))
    batch_max_events: int = env("SSE_BATCH_MAX_EVENTS", 100, ge=1)
    retry_ms: int = env("SSE_RETRY", 1000, ge=0)
    retry_spread_ms: int = env("SSE_RETRY_SPREAD", 3000, ge=0)
    resumes_at_once: int = env("SSE_RESUMES_AT_ONCE", 1024, ge=1)
    send_timeout_ms: int = env("SSE_SEND_TIMEOUT", 10000, ge=1)
    fan_out_share: float = env("SSE_FAN_OUT_SHARE", 0.5, gt=0, le=1)
    client_buffer_bytes: int = env("SSE_CLIENT_BUFFER", 1048576, ge=1024)
    max_connections: int = env("SSE_MAX_CONNECTIONS", 18000, ge=1)
    history_max_events: int = env("REALTIME_HISTORY_MAX", 100000, ge=1)
    history_max_age_s: int = env("REALTIME_HISTORY_MAX_AGE", 86400, ge=1)
    report_interval_s: float = env("REALTIME_REPORT_INTERVAL", 1.0, ge=0)
    recent_max_events: int = env("REALTIME_RECENT_MAX_EVENTS", 20000, ge=0)
    recent_max_age_s: int = env("REALTIME_RECENT_MAX_AGE", 600, ge=0)
    history_connections: int = env("REALTIME_HISTORY_CONNECTIONS", 4, ge=1)
    redis_command_pool_size: int = env("REDIS_COMMAND_POOL_SIZE", 20, ge=1)
    redis_command_pool_wait_s: float = env("REDIS_COMMAND_POOL_WAIT", 5.0, ge=0)
    stats_retention_days: int = env("REALTIME_STATS_RETENTION_DAYS", 30, ge=1)
    # --- Deployment ---
    rakuda_env: Environment = env("RAKUDA_ENV", "development")
    # --- Auth ---
    api_keys: CommaList = env("API_KEYS", ())
    secret_key: str = env("SECRET_KEY", "")
    token_ttl_s: int = env("REALTIME_TOKEN_TTL", 900, ge=1)
    auth_max_failures: int = env("AUTH_MAX_FAILURES", 5, ge=1)
    auth_block_s: int = env("AUTH_BLOCK_SECONDS", 900, ge=1)
    trusted_proxies: int = env("TRUSTED_PROXIES", 0, ge=0)
    # --- Roles and abuse limits ---
    admin_api_keys: CommaList = env("ADMIN_API_KEYS", ())
    replay_max_events: int = env("REALTIME_REPLAY_MAX_EVENTS", 10000, ge=1)
    max_streams_per_key: int = env("SSE_MAX_STREAMS_PER_KEY", 1000, ge=1)
    max_streams_per_address: int = env("SSE_MAX_STREAMS_PER_ADDRESS", 100, ge=1)
    new_streams_rate: float = env("SSE_NEW_STREAMS_PER_ADDRESS_RATE", 10.0, ge=0)
    new_streams_burst: int = env("SSE_NEW_STREAMS_PER_ADDRESS_BURST", 100, ge=1)
    auth_first_block_s: int = env("AUTH_FIRST_BLOCK_SECONDS", 15, ge=1)
    auth_max_tracked: int = env("AUTH_MAX_TRACKED_ADDRESSES", 100000, ge=1)
    # --- Logs ---
    log_format: LogFormat = env("LOG_FORMAT", "text")
    log_level: LogLevel = env("LOG_LEVEL", "info")
    # --- Database, Celery, webhooks, pricing (the task pipeline) ---
    database_url: str = env("DATABASE_URL", "sqlite:///rakuda.db")
    celery_broker_url: str = env("CELERY_BROKER_URL", "")
    ebay_webhook_secret: str = env("EBAY_WEBHOOK_SECRET", "")
    ebay_verification_token: str = env("EBAY_VERIFICATION_TOKEN", "")
    ebay_webhook_endpoint: str = env("EBAY_WEBHOOK_ENDPOINT", "")
    joom_webhook_secret: str = env("JOOM_WEBHOOK_SECRET", "")
    webhook_max_bytes: int = env("WEBHOOK_MAX_BYTES", 262144, ge=1)
    price_change_threshold_percent: float = env("PRICE_CHANGE_THRESHOLD_PERCENT", 10.0, ge=0)
    # --- Beat intervals (seconds) and task tuning ---
    inventory_check_interval_s: float = env("INVENTORY_CHECK_INTERVAL", 60.0, ge=0)
    inventory_recheck_after_s: float = env("INVENTORY_RECHECK_AFTER", 3600.0, ge=0)
    inventory_batch_size: int = env("INVENTORY_BATCH_SIZE", 50, ge=1)
    price_sync_interval_s: float = env("PRICE_SYNC_INTERVAL", 300.0, ge=0)
    price_sync_batch_size: int = env("PRICE_SYNC_BATCH_SIZE", 1000, ge=1)
    outbox_relay_interval_s: float = env("OUTBOX_RELAY_INTERVAL", 5.0, ge=0)
    webhook_sweep_interval_s: float = env("WEBHOOK_SWEEP_INTERVAL", 30.0, ge=0)
    webhook_sweep_after_s: float = env("WEBHOOK_SWEEP_AFTER", 30.0, ge=0)
    webhook_orphan_after_s: float = env("WEBHOOK_ORPHAN_AFTER", 3600.0, ge=0)
    demo_orders_interval_s: float = env("DEMO_ORDERS_INTERVAL", 0.0, ge=0)
    celery_visibility_timeout_s: int = env("CELERY_VISIBILITY_TIMEOUT", 3600, ge=1)
    beat_lock_ttl_s: float = env("BEAT_LOCK_TTL", 30.0, ge=0)
    task_max_retries: int = env("TASK_MAX_RETRIES", 5, ge=0)
    task_retry_backoff_s: float = env("TASK_RETRY_BACKOFF", 2.0, ge=0)
    task_retry_backoff_max_s: float = env("TASK_RETRY_BACKOFF_MAX", 300.0, ge=0)
    # --- Supplier and marketplace clients (empty URL: the seeded sandbox simulator) ---
    supplier_api_url: str = env("SUPPLIER_API_URL", "")
    marketplace_api_url: str = env("MARKETPLACE_API_URL", "")
    client_timeout_s: float = env("CLIENT_TIMEOUT", 10.0, ge=0)
    sandbox_seed: int = env("SANDBOX_SEED", 27, ge=0)
    # --- Durable consumers and the notifier ---
    consumer_claim_after_s: float = env("CONSUMER_CLAIM_AFTER", 60.0, ge=0)
    consumer_max_deliveries: int = env("CONSUMER_MAX_DELIVERIES", 5, ge=1)
    notify_events: CommaList = env("NOTIFY_EVENTS", ("ORDER_RECEIVED", "INVENTORY_CHANGE"))
    notify_rules_file: str = env("NOTIFY_RULES_FILE", "")
    notify_price_change_percent: float = env("NOTIFY_PRICE_CHANGE_PERCENT", 20.0, ge=0)
    notify_max_attempts: int = env("NOTIFY_MAX_ATTEMPTS", 6, ge=1)
    notify_backoff_s: float = env("NOTIFY_BACKOFF", 1.0, ge=0)
    notify_backoff_max_s: float = env("NOTIFY_BACKOFF_MAX", 60.0, ge=0)
    notify_timeout_s: float = env("NOTIFY_TIMEOUT", 10.0, ge=0)
    notify_batch_window_s: float = env("NOTIFY_BATCH_WINDOW", 10.0, ge=0)
    notify_sent_ttl_s: int = env("NOTIFY_SENT_TTL", 7 * 86400, ge=1)
    notify_dashboard_url: str = env("NOTIFY_DASHBOARD_URL", "http://127.0.0.1:5000")
    notify_discord_webhook_url: str = env("NOTIFY_DISCORD_WEBHOOK_URL", "")
    notify_line_channel_token: str = env("NOTIFY_LINE_CHANNEL_TOKEN", "")
    notify_line_to: str = env("NOTIFY_LINE_TO", "")
    line_api_url: str = env("LINE_API_URL", "https://api.line.me")
    notify_webhook_url: str = env("NOTIFY_WEBHOOK_URL", "")
    notify_webhook_secret: str = env("NOTIFY_WEBHOOK_SECRET", "")
    notify_escalation_discord_webhook_url: str = env("NOTIFY_ESCALATION_DISCORD_WEBHOOK_URL", "")
    notify_escalation_line_channel_token: str = env("NOTIFY_ESCALATION_LINE_CHANNEL_TOKEN", "")
    notify_escalation_line_to: str = env("NOTIFY_ESCALATION_LINE_TO", "")
    notify_escalation_webhook_url: str = env("NOTIFY_ESCALATION_WEBHOOK_URL", "")
    notify_escalation_webhook_secret: str = env("NOTIFY_ESCALATION_WEBHOOK_SECRET", "")
    order_ack_escalate_after: float = env("ORDER_ACK_ESCALATE_AFTER", 30.0, ge=0)
    order_ack_minute_s: float = env("ORDER_ACK_MINUTE_SECONDS", 60.0, ge=0)

    # --- Exchange rate (empty URL: the sandbox's rates) ---
    fx_rate_url: str = env("FX_RATE_URL", "")
    fx_rate_interval_s: float = env("FX_RATE_INTERVAL", 3600.0, ge=0)
    fx_reprice_threshold_percent: float = env("FX_REPRICE_THRESHOLD_PERCENT", 1.0, ge=0)


    @model_validator(mode="after")
    def _sentinels_need_a_master(self) -> Settings:
        if self.redis_sentinels and not self.redis_sentinel_master:
            raise ValueError("REDIS_SENTINEL_MASTER: REDIS_SENTINELS is set: name the monitored primary too")
        return self

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
    def env_keys(cls) -> dict[str, str]:
        """Field name → environment variable, for every setting."""
        return {name: str(f.validation_alias) for name, f in cls.model_fields.items()}

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | None = ".env", **overrides: Any
    ) -> Settings:
        """Settings from ``environ`` (default: os.environ over ``env_file``), then ``overrides`` (by field name)."""
        keys = cls.env_keys()
        unknown = set(overrides) - set(keys)
        if unknown:
            raise TypeError(f"not settings: {', '.join(sorted(unknown))}")
        try:
            if environ is None:
                base = cls(_env_file=env_file)
                if not overrides:
                    return base
                environ = base.env_items()
            values: dict[str, Any] = {k: v for k, v in environ.items() if k in keys.values()}
            values.update({keys[name]: value for name, value in overrides.items()})
            return cls.model_validate(values)
        except ValidationError as exc:
            raise _named(exc) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (by field name), validated like everything else."""
        return self.from_env(self.env_items(), **changes)

    def env_items(self) -> dict[str, str]:
        """These settings as environment variables (for starting a subprocess with them)."""
        out = {}
        for name, key in self.env_keys().items():
            value = getattr(self, name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, tuple):
                value = ",".join(value)
            out[key] = str(value)
        return out


def _named(exc: ValidationError) -> ConfigError:
    """The first error of a validation as a ConfigError naming its environment variable."""
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    key = str(error["loc"][0]) if error["loc"] else message.partition(":")[0]
    if not error["loc"]:
        message = message.partition(": ")[2]
    elif "input" in error:
        message = f"{message}, got {error['input']!r}"
    return ConfigError(key, message)


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines of a ``.env`` file (python-dotenv's reading); a missing file: {}."""
    return {key: value or "" for key, value in dotenv_values(path).items()}


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current
