"""The JPY→USD rate task through a real worker: history stored, a move past the threshold reprices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from shared import task_names
from shared.models import ExchangeRate
from tasks import exchange_rates
from tasks.errors import PermanentError
from tests.pipeline.conftest import published_events
from tests.pipeline.fakes import JsonServer
from tests.waiting import eventually


class FakeRates(JsonServer):
    def __init__(self) -> None:
        super().__init__()
        self.rate: Any = "0.0067"

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any, float]:
        return 200, {"base": "JPY", "quote": "USD", "rate": self.rate}, 0.0


@pytest.fixture
def rates():
    server = FakeRates().start()
    yield server
    server.stop()


def stored_rates(runtime) -> list[Decimal]:
    with runtime.db.transaction() as session:
        return list(session.scalars(select(ExchangeRate.rate).order_by(ExchangeRate.id)))


def test_a_rate_move_past_the_threshold_reprices_and_emits_price_change(runtime, celery_app, worker, catalogue,
                                                                        rates, bus_redis):
    catalogue(1, price_jpy=10000, weight=500)  # rate 0.0067 stored; listings at 100.00
    runtime.settings = runtime.settings.replace(fx_rate_url=rates.url,
                                           fx_reprice_threshold_percent=2.0)
    # first bring the listings to the formula's prices at the current rate
    celery_app.send_task(task_names.PRICE_SYNC)
    eventually(lambda: len(published_events(bus_redis, "PRICE_CHANGE")) == 2, what="the first sync")

    rates.rate = "0.00675"  # +0.75 %: stored, below the threshold, no reprice
    celery_app.send_task(task_names.FX_REFRESH)
    eventually(lambda: len(stored_rates(runtime)) == 2, what="the small move stored")
    assert len(published_events(bus_redis, "PRICE_CHANGE")) == 2

    rates.rate = "0.0072"  # +6.7 % on the previous: reprice through the price sync
    celery_app.send_task(task_names.FX_REFRESH)
    changes = eventually(lambda: len(published_events(bus_redis, "PRICE_CHANGE")) == 4
                       and published_events(bus_redis, "PRICE_CHANGE")[2:], what="PRICE_CHANGE after the move")
    assert stored_rates(runtime) == [Decimal("0.0067"), Decimal("0.00675"), Decimal("0.0072")]
    for event in changes:
        data = event["payload"]["data"]
        assert data["kind"] == "listing" and Decimal(data["newPrice"]) > Decimal(data["oldPrice"])


@pytest.mark.parametrize("raw", [None, "abc", "-1", "0", "NaN"])
def test_a_bad_rate_is_refused_with_what_came_back(raw):
    with pytest.raises(PermanentError, match="FX rate"):
        exchange_rates.parse_rate(raw)


def test_the_sandbox_gives_a_rate_near_0_0067(runtime):
    rate = exchange_rates.SandboxRates(27).jpy_usd()
    assert Decimal("0.0066") < rate < Decimal("0.0068")
    refresh = exchange_rates.refresh_rate(runtime, exchange_rates.SandboxRates(27))
    assert refresh.previous is None and refresh.reprice is False and stored_rates(runtime) == [rate]
