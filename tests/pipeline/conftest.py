"""Pipeline fixtures: a PostgreSQL schema per test, migrated; a real Celery worker on the test's Redis DB.

Events are read back from the bus's history stream (``XRANGE rakuda:realtime:history``) in the
test's own Redis database: a real reader of exactly what was published.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun

from shared import task_names
from shared.config import Settings
from shared.constants import HISTORY_STREAM
from shared.models import Listing, ListingStatus, Marketplace, PriceSetting, Product, ProductSource
from tasks.celery_app import create_celery
from tasks.runtime import Runtime
from tasks.schema import upgrade
from tests.fixtures import postgres_schema, price_setting_rows
from tests.pipeline.fakes import FakeMarketplace, FakeSupplier
from tests.servers import RedisServer
from tests.waiting import eventually


def published_events(client: redis.Redis, event_type: str | None = None) -> list[dict[str, Any]]:
    """Every event in the bus's history stream of this test's Redis DB, oldest first, with its bus id."""
    events = []
    for entry_id, fields in client.xrange(HISTORY_STREAM):
        event = json.loads(fields["e"])
        event["id"] = entry_id
        if event_type is None or event["type"] == event_type:
            events.append(event)
    return events


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test, dropped after it."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def pipeline_settings(settings: Settings, database_url: str) -> Settings:
    """Test settings plus the pipeline's: this test's schema, quick retries, no beat."""
    return settings.replace(database_url=database_url, task_max_retries=2, task_retry_backoff_s=0.05,
        task_retry_backoff_max_s=0.2, client_timeout_s=2.0,
        joom_webhook_secret="joom-test-secret", ebay_webhook_secret="ebay-test-secret",
        ebay_verification_token="ebay-token-0123456789", ebay_webhook_endpoint="https://rakuda.example/api/webhooks/ebay",
        webhook_max_bytes=16384,
    )


@pytest.fixture
def migrated(pipeline_settings: Settings) -> Settings:
    upgrade(pipeline_settings.database_url)
    return pipeline_settings


@pytest.fixture
def supplier() -> Iterator[FakeSupplier]:
    server = FakeSupplier().start()
    yield server
    server.stop()


@pytest.fixture
def marketplace() -> Iterator[FakeMarketplace]:
    server = FakeMarketplace().start()
    yield server
    server.stop()


@pytest.fixture
def app_settings(migrated: Settings, supplier: FakeSupplier, marketplace: FakeMarketplace) -> Settings:
    """Settings whose clients talk to this test's fake supplier and marketplace servers."""
    return migrated.replace(supplier_api_url=supplier.url, marketplace_api_url=marketplace.url)


@pytest.fixture
def runtime(app_settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(app_settings)
    yield rt
    rt.reset()


@pytest.fixture
def celery_app(app_settings: Settings, runtime: Runtime):
    app = create_celery(app_settings, runtime=runtime)
    # The worker's BRPOP gives up every 0.1 s, not every 1 s: it stops that much sooner at the
    # test's end (a task sent meanwhile still wakes it at once).
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.1}
    yield app
    app.close()


@pytest.fixture
def worker(celery_app):
    """A real Celery worker (solo pool, in a thread) consuming this test's Redis DB."""
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10,
                      loglevel="WARNING") as w:
        yield w


@pytest.fixture
def tasks_done(celery_app, worker) -> Iterator[Callable[[], None]]:
    """``tasks_done()``: send a marker task and return once the worker has run it. The worker runs
    one task at a time, in the order sent, so every task sent before the marker has run by then
    (a retry that waits for its countdown is sent again, after the marker: wait for it by its effect)."""
    finished: set[str] = set()

    def record(task_id: str | None = None, **_: Any) -> None:
        if task_id:
            finished.add(task_id)

    task_postrun.connect(record, weak=False)

    def wait() -> None:
        marker = celery_app.send_task(task_names.INVENTORY_CHECK_BATCH, args=[[]])  # checks nothing
        eventually(lambda: marker.id in finished, what="the marker task")

    yield wait
    task_postrun.disconnect(record)


@pytest.fixture
def publish_many_calls(runtime: Runtime) -> list[tuple[str, int]]:
    """(channel, number of events) of each ``publish_many`` the runtime's bus makes from now on."""
    calls: list[tuple[str, int]] = []
    real = runtime.bus.publish_many

    def counting(channel, events):
        events = list(events)
        calls.append((channel, len(events)))
        return real(channel, events)

    runtime.bus.publish_many = counting  # type: ignore[method-assign]
    return calls


@pytest.fixture
def stoppable_bus(app_settings: Settings, private_redis: RedisServer) -> Iterator[tuple[Runtime, Any]]:
    """A runtime and its Celery app whose event bus is ``private_redis`` (the test may stop and start
    it), the broker staying on the test's database."""
    settings = app_settings.replace(redis_url=private_redis.url, celery_broker_url=app_settings.redis_url)
    rt = Runtime(settings)
    app = create_celery(settings, runtime=rt)
    rt.bus.redis.ping()
    yield rt, app
    rt.reset()
    app.close()


def run_relay(app, relayed: Callable[[], Any]) -> Any:
    """Run the outbox relay task on a worker of ``app``; what ``relayed()`` returns once true."""
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        app.send_task(task_names.OUTBOX_RELAY)
        return eventually(relayed, what="the relay")


@pytest.fixture
def bus_redis(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


@pytest.fixture
def catalogue(runtime: Runtime, supplier: FakeSupplier) -> Callable[..., list[int]]:
    """``catalogue(n, listed=True)``: n products (supplier shows them available), each with an ACTIVE
    eBay and Joom listing when ``listed``; price settings and an exchange rate. Returns product ids."""

    def make(count: int = 2, listed: bool = True, price_jpy: int = 10000, weight: int = 500) -> list[int]:
        ids = []
        with runtime.db.transaction() as session:
            if session.get(PriceSetting, 1) is None:
                session.add_all(price_setting_rows())
            for i in range(count):
                item_id = f"m{uuid.uuid4().hex[:10]}"
                product = Product(source=ProductSource.MERCARI, source_item_id=item_id, title=f"Item {i}",
                                  source_url=f"https://jp.mercari.com/item/{item_id}",
                                  purchase_price_jpy=price_jpy, weight_grams=weight, is_available=True)
                session.add(product)
                supplier.items[("MERCARI", item_id)] = {"available": True, "price_jpy": price_jpy}
                session.flush()
                ids.append(product.id)
                if listed:
                    for mp in (Marketplace.EBAY, Marketplace.JOOM):
                        session.add(Listing(product_id=product.id, marketplace=mp,
                                            sku=f"ALS-{mp.value[0]}{product.id:07d}",
                                            marketplace_listing_id=f"{mp.value.lower()}-{product.id}",
                                            listing_price=Decimal("100.00"), status=ListingStatus.ACTIVE))
        return ids

    return make


@pytest.fixture
def gateway_app(app_settings: Settings):
    """The gateway's Flask app (its factory) with the webhooks blueprint, on this test's database."""
    from gateway.app import create_app
    from gateway.services import services_of

    app = create_app(app_settings)
    yield app
    services_of(app).close()


@pytest.fixture
def http(gateway_app):
    return gateway_app.test_client()
