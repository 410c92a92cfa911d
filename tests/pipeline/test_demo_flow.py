"""The demo on its own: worker + beat on a seeded catalogue with the sandbox clients emit all four event types."""

from __future__ import annotations

import time

import pytest

from shared.config import Settings
from tasks.demo import seed_catalogue
from tasks.runtime import Runtime
from tests.pipeline import processes
from tests.pipeline.conftest import published_events
from tests.waiting import eventually

pytestmark = pytest.mark.slow

DEMO_ENV = {"INVENTORY_CHECK_INTERVAL": "1", "INVENTORY_RECHECK_AFTER": "3", "PRICE_SYNC_INTERVAL": "2",
            "DEMO_ORDERS_INTERVAL": "1", "OUTBOX_RELAY_INTERVAL": "2", "WEBHOOK_SWEEP_INTERVAL": "5",
            "BEAT_LOCK_TTL": "3"}


def test_seeded_demo_with_worker_and_beat_emits_all_four_event_types(migrated: Settings, bus_redis):
    sandbox = migrated.replace(supplier_api_url="", marketplace_api_url="")
    rt = Runtime(sandbox)
    try:
        seed_catalogue(rt, products=60, orders=3)
    finally:
        rt.reset()
    worker = processes.worker(sandbox, **DEMO_ENV).start()
    beat = processes.beat(sandbox, **DEMO_ENV).start()
    started = time.monotonic()
    try:
        eventually(lambda: {e["type"] for e in published_events(bus_redis)} >= {
            "INVENTORY_CHANGE", "ORDER_RECEIVED", "PRICE_CHANGE", "LISTING_UPDATE"}, timeout=45,
            what="events of all four families")
    finally:
        beat.stop()
        worker.stop()
    print(f"all four event types within {time.monotonic() - started:.1f}s of starting worker+beat")
