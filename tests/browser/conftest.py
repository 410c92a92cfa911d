"""Fixtures for the dashboard: a PostgreSQL schema with a few rows, a real gateway, a real Chromium."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.database import driver_url
from shared.event_bus import EventBus
from shared.models import (
    Base,
    Listing,
    ListingStatus,
    Marketplace,
    Order,
    OrderStatus,
    PriceHistory,
    Product,
    ProductSource,
)
from tests.fixtures import postgres_schema
from tests.servers import GatewayServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Fast reconnects in tests; the production schedule (1 s doubling to 30 s) is unit-tested in tests/js.
FAST_BACKOFF = "window.RAKUDA_REALTIME_OPTIONS = { backoff: { baseMs: 300, maxMs: 1000 } };"


class DashboardServer(GatewayServer):
    """The gateway (gunicorn + gevent, one worker), restartable on its port, and pausable."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        super().__init__(env, workers=1, port=port)

    def pause(self) -> None:
        """SIGSTOP the master and its workers: connections stay open, nothing is sent (not even heartbeats)."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def _pids(self) -> list[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [self.proc.pid, *map(int, children)]


@pytest.fixture
def database_url() -> Iterator[str]:
    """A PostgreSQL schema of its own, with every table, dropped after the test."""
    with postgres_schema("dash_") as url:
        engine = create_engine(driver_url(url))
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = create_engine(driver_url(database_url))
    yield engine
    engine.dispose()


@pytest.fixture
def catalogue(db: Engine) -> dict[str, int]:
    """Two products, their listings and an order; returns their ids."""
    with Session(db) as session, session.begin():
        camera = Product(source=ProductSource.MERCARI, source_item_id="m100", title="Film camera Olympus OM-1",
                         purchase_price_jpy=18000, weight_grams=700, is_available=True)
        lens = Product(source=ProductSource.YAHOO_AUCTION, source_item_id="y200", title="Zuiko 50mm f/1.8 lens",
                       purchase_price_jpy=6000, weight_grams=250, is_available=True)
        session.add_all([camera, lens])
        session.flush()
        ebay = Listing(product_id=camera.id, marketplace=Marketplace.EBAY, sku="CAM-1", listing_price=Decimal("189.00"),
                       status=ListingStatus.ACTIVE)
        joom = Listing(product_id=lens.id, marketplace=Marketplace.JOOM, sku="LENS-1", listing_price=Decimal("64.50"),
                       status=ListingStatus.ACTIVE)
        session.add_all([ebay, joom])
        session.flush()
        session.add(PriceHistory(listing_id=ebay.id, old_price=Decimal("179.00"), new_price=Decimal("189.00")))
        order = Order(marketplace=Marketplace.EBAY, marketplace_order_id="12-34567-89012", buyer_name="A. Buyer",
                      total=Decimal("189.00"), currency="USD", status=OrderStatus.PAID, raw_data={})
        session.add(order)
        session.flush()
        return {"camera": camera.id, "lens": lens.id, "ebay": ebay.id, "joom": joom.id, "order": order.id}


@pytest.fixture
def dashboard_settings(settings: Settings, database_url: str) -> Settings:
    """Heartbeat 1 s; stream tokens live 2 s, so a reconnect that reused an old token would fail."""
    return Settings.from_env({**settings.env_items(), "DATABASE_URL": database_url, "REALTIME_TOKEN_TTL": "2"})


@pytest.fixture
def dashboard(dashboard_settings: Settings) -> Iterator[DashboardServer]:
    server = DashboardServer(dashboard_settings.env_items()).start()
    yield server
    server.discard()
    Path(server.log_path).unlink(missing_ok=True)


@pytest.fixture
def bus(dashboard_settings: Settings) -> Iterator[EventBus]:
    bus = EventBus()
    bus.initialize(dashboard_settings)
    yield bus
    bus.close()


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, dashboard):
    """A fresh browser context (no key, no cookies); closed before the gateway stops."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    context.add_init_script(FAST_BACKOFF)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
