"""The ``rakuda`` console script, run as operators run it: a subprocess with settings in its environment."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from shared.config import Settings
from shared.models import Listing, ListingStatus, Order, Product
from tests.pipeline.conftest import published_events
from tests.servers import ROOT
from tests.waiting import eventually


def rakuda(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **settings.env_items(), **env}, timeout=120)


@pytest.mark.parametrize("command", [[], ["db", "upgrade"], ["demo", "seed"], ["inventory", "check"],
                                     ["prices", "sync"], ["webhook", "send"], ["outbox", "relay"]])
def test_every_command_has_help(command, settings):
    result = rakuda(settings, *command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from tasks.schema import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def seed_sqlite(settings: Settings, path) -> list[tuple]:
    url = f"sqlite:///{path}"
    upgraded = rakuda(settings, "db", "upgrade", DATABASE_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    seeded = rakuda(settings, "demo", "seed", "--products", "30", "--no-publish", DATABASE_URL=url)
    assert seeded.returncode == 0, seeded.stderr
    assert "products=30" in seeded.stdout
    with sqlite3.connect(path) as conn:
        assert conn.execute("select version_num from alembic_version").fetchone() == (head_revision(),)
        assert conn.execute("select count(*) from listings").fetchone() == (60,)
        return conn.execute("select p.title, p.purchase_price_jpy, p.weight_grams, l.listing_price, l.status "
                            "from products p join listings l on l.product_id = p.id order by l.id").fetchall()


def test_db_upgrade_and_demo_seed_on_the_sqlite_default_build_the_same_catalogue_for_one_seed(tmp_path, settings):
    first = seed_sqlite(settings, tmp_path / "a.db")
    assert first == seed_sqlite(settings, tmp_path / "b.db")
    assert len({row[0] for row in first}) > 1


def test_demo_seed_queues_publishing_for_the_worker_and_runs_once(migrated, runtime, celery_app, worker, bus_redis):
    seeded = rakuda(migrated, "demo", "seed", "--products", "40", "--orders", "5")
    assert seeded.returncode == 0, seeded.stderr
    assert "queued 8 listing(s) for publishing" in seeded.stdout
    again = rakuda(migrated, "demo", "seed")
    assert "products=0" in again.stdout  # a seeded database is left alone
    with runtime.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Product)) == 40
        assert session.scalar(select(func.count()).select_from(Order)) == 5
    eventually(lambda: len(published_events(bus_redis, "LISTING_UPDATE")) >= 16, timeout=30,
             what="8 listings published by the worker (PUBLISHING + ACTIVE/ERROR each)")
    with runtime.db.transaction() as session:
        waiting = session.scalar(select(func.count()).select_from(Listing)
                                 .where(Listing.status == ListingStatus.PENDING_PUBLISH))
    assert waiting == 0


def test_inventory_check_and_prices_sync_run_through_celery(migrated, runtime, celery_app, worker, catalogue):
    ids = catalogue(3)
    result = rakuda(runtime.settings, "inventory", "check", "--all")
    assert result.returncode == 0 and "queued rakuda.inventory.sweep" in result.stdout, result.stderr
    eventually(lambda: _all_checked(runtime, ids), what="the sweep run by the worker")
    result = rakuda(runtime.settings, "prices", "sync")
    assert result.returncode == 0 and "queued rakuda.prices.sync" in result.stdout


def _all_checked(runtime, ids):
    with runtime.db.transaction() as session:
        return all(p.last_checked_at for p in session.scalars(select(Product).where(Product.id.in_(ids))))


@pytest.mark.parametrize("provider", ["joom", "ebay"])
def test_webhook_send_reaches_a_running_gateway_and_becomes_order_received(provider, gateway_app, runtime, worker,
                                                                          bus_redis):
    server = make_server("127.0.0.1", 0, gateway_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        result = rakuda(runtime.settings, "webhook", "send", provider, "--url", f"http://127.0.0.1:{server.port}",
                        "--order-id", "CLI-1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("202 ")
        (event,) = eventually(lambda: published_events(bus_redis, "ORDER_RECEIVED"))
        assert event["payload"]["data"]["orderId"] == "CLI-1"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_webhook_send_with_a_wrong_secret_is_refused(gateway_app, runtime):
    server = make_server("127.0.0.1", 0, gateway_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        result = rakuda(runtime.settings, "webhook", "send", "joom", "--url", f"http://127.0.0.1:{server.port}",
                        JOOM_WEBHOOK_SECRET="not-the-secret")
        assert result.returncode == 1 and result.stdout.startswith("401 ")
    finally:
        server.shutdown()
        thread.join(timeout=5)
