"""The JPY→USD rate: fetched from FX_RATE_URL (or the sandbox), kept as history, and a reprice when it moves.

HTTP protocol: ``GET {FX_RATE_URL}`` -> 200 ``{"base": "JPY", "quote": "USD", "rate": "0.0067"}``
(``base``/``quote`` optional, checked when present). A missing, non-positive or non-numeric
rate is a PermanentError naming what came back.

Each refresh stores a row in ``exchange_rates`` (the history the price formula reads its latest
rate from). When the new rate differs from the previous one by at least
``FX_REPRICE_THRESHOLD_PERCENT``, the caller queues the normal price sync, which reprices every
ACTIVE listing with the new rate and emits PRICE_CHANGE for the ones that moved.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from sqlalchemy import select

from shared import task_names as names
from shared.models import ExchangeRate
from tasks.errors import PermanentError, TransientError
from tasks.http_json import HttpJson
from tasks.registry import RakudaTask, task
from tasks.runtime import Runtime

log = logging.getLogger(__name__)

SANDBOX_BASE_RATE = Decimal("0.0067")


class RateSource(Protocol):
    def jpy_usd(self) -> Decimal: ...


class HttpRateSource:
    def __init__(self, url: str, timeout: float) -> None:
        self.http = HttpJson(url, timeout)

    def jpy_usd(self) -> Decimal:
        status, body = self.http.request("GET", "")
        if status == 404 or not isinstance(body, dict):
            raise PermanentError(f"FX_RATE_URL answered {status} without a JSON object")
        if body.get("base", "JPY") != "JPY" or body.get("quote", "USD") != "USD":
            raise PermanentError(f"FX_RATE_URL gave {body.get('base')}→{body.get('quote')}, not JPY→USD")
        return parse_rate(body.get("rate"))


class SandboxRates:
    """A deterministic rate per hour, within ±1 % of 0.0067 (seeded like the other sandboxes)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def jpy_usd(self) -> Decimal:
        hour = int(time.time() // 3600)
        roll = int.from_bytes(hashlib.sha256(f"{self.seed}|fx|{hour}".encode()).digest()[:4], "big")
        return (SANDBOX_BASE_RATE * (1 + Decimal(roll % 201 - 100) / 10000)).quantize(Decimal("0.00000001"))


def parse_rate(raw: object) -> Decimal:
    try:
        rate = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise PermanentError(f"FX rate {raw!r} is not a number") from None
    if not rate.is_finite() or rate <= 0:
        raise PermanentError(f"FX rate {raw!r} must be a positive number")
    return rate


def rate_source(rt: Runtime) -> RateSource:
    if rt.settings.fx_rate_url:
        return HttpRateSource(rt.settings.fx_rate_url, rt.settings.client_timeout_s)
    return SandboxRates(rt.settings.sandbox_seed)


@dataclass
class RateRefresh:
    previous: Decimal | None
    rate: Decimal
    change_percent: float | None  # None: no previous rate to compare with
    reprice: bool


def refresh_rate(rt: Runtime, source: RateSource) -> RateRefresh:
    """Fetch the rate, store it, and say whether it moved enough to reprice."""
    rate = source.jpy_usd()
    with rt.db.transaction() as session:
        previous = session.scalars(select(ExchangeRate.rate).where(ExchangeRate.base == "JPY",
                                                                   ExchangeRate.quote == "USD")
                                   .order_by(ExchangeRate.fetched_at.desc(), ExchangeRate.id.desc()).limit(1)).first()
        session.add(ExchangeRate(base="JPY", quote="USD", rate=rate))
    if previous is None or previous == 0:
        return RateRefresh(previous, rate, None, False)
    percent = float(abs(rate - previous) * 100 / previous)
    return RateRefresh(previous, rate, round(percent, 4), percent >= rt.settings.fx_reprice_threshold_percent)


@task(names.FX_REFRESH, autoretry_for=(TransientError,))
def refresh_exchange_rate(task: RakudaTask, /) -> dict[str, Any]:
    """Store the JPY→USD rate; a move of FX_REPRICE_THRESHOLD_PERCENT or more queues the price sync."""
    refresh = refresh_rate(task.runtime, rate_source(task.runtime))
    if refresh.reprice:
        log.info("JPY->USD moved %.2f%% (%s -> %s): repricing", refresh.change_percent, refresh.previous,
                 refresh.rate)
        task.app.send_task(names.PRICE_SYNC)
    return {"rate": str(refresh.rate), "previous": None if refresh.previous is None else str(refresh.previous),
            "changePercent": refresh.change_percent, "repriced": refresh.reprice}
