"""Test data and private servers that several suites use: a redis-server of a test's own, a
PostgreSQL schema of a test's own, and the marketplaces' price settings of the test catalogue."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from shared.database import driver_url
from shared.models import ExchangeRate, Marketplace, PriceSetting
from tests.servers import RedisServer

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")

# The fees of the test catalogue's marketplaces, and its JPY -> USD rate: a product of 10,000 JPY
# and 500 g is listed at 122.85 USD on eBay and 124.20 USD on Joom.
PRICE_SETTINGS: dict[Marketplace, dict[str, Decimal]] = {
    Marketplace.EBAY: {"platform_fee_rate": Decimal("0.1325"), "payment_fee_rate": Decimal("0.03"),
                       "ad_rate": Decimal("0.02"), "profit_rate": Decimal("0.15"),
                       "default_shipping_usd": Decimal("15.00")},
    Marketplace.JOOM: {"platform_fee_rate": Decimal("0.15"), "payment_fee_rate": Decimal("0.03"),
                       "ad_rate": Decimal("0"), "profit_rate": Decimal("0.20"), "default_shipping_usd": Decimal("0")},
}
JPY_TO_USD = Decimal("0.0067")


def price_setting_rows() -> list[Any]:
    """The rows that give a database the test catalogue's price settings and exchange rate."""
    rows: list[Any] = [PriceSetting(marketplace=mp, **fees) for mp, fees in PRICE_SETTINGS.items()]
    return [*rows, ExchangeRate(rate=JPY_TO_USD)]


@contextmanager
def postgres_schema(prefix: str = "t_") -> Iterator[str]:
    """A PostgreSQL schema of the caller's own (empty), dropped after; yields the URL that uses it."""
    schema = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(driver_url(POSTGRES_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port: no other test's commands in its counters,
    and the test may stop and start it (same port, empty: no persistence)."""
    server = RedisServer().start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)
