"""A worker killed mid-task, and two beats started at once: real Celery processes."""

from __future__ import annotations

import json
import time

import pytest

from shared import task_names
from shared.models import Product
from tests.pipeline import processes
from tests.pipeline.conftest import published_events
from tests.waiting import eventually

pytestmark = pytest.mark.slow


def test_worker_killed_mid_task_runs_it_again_one_change_one_event(runtime, celery_app, app_settings, catalogue,
                                                                   supplier, bus_redis):
    (product_id,) = catalogue(1, listed=False)
    with runtime.db.transaction() as session:
        item_id = session.get(Product, product_id).source_item_id
    supplier.items[("MERCARI", item_id)]["available"] = False
    supplier.delay = 4.0  # the task is inside the supplier call when its worker dies
    env = {"CELERY_VISIBILITY_TIMEOUT": "2", "CLIENT_TIMEOUT": "10"}

    first = processes.worker(app_settings, **env).start()
    try:
        celery_app.send_task(task_names.INVENTORY_CHECK_BATCH, args=[[product_id]])
        eventually(lambda: supplier.calls("GET"), timeout=30, what="the task to start in the first worker")
        first.kill()
    finally:
        first.kill()
    supplier.delay = 0.0
    second = processes.worker(app_settings, **env).start()
    try:
        eventually(lambda: published_events(bus_redis, "INVENTORY_CHANGE"), timeout=30,
                 what="the task to run again in the second worker")
    finally:
        second.stop()
    assert len(supplier.calls("GET")) >= 2
    with runtime.db.transaction() as session:
        assert session.get(Product, product_id).is_available is False
    assert len(published_events(bus_redis, "INVENTORY_CHANGE")) == 1


def queued_tasks(client) -> list[str]:
    return [json.loads(m)["headers"]["task"] for m in client.lrange("rakuda", 0, -1)]


def test_two_beats_fire_each_entry_once_and_the_survivor_takes_over(app_settings, bus_redis):
    interval = 0.5
    env = {"OUTBOX_RELAY_INTERVAL": str(interval), "INVENTORY_CHECK_INTERVAL": "0", "PRICE_SYNC_INTERVAL": "0",
           "WEBHOOK_SWEEP_INTERVAL": "0", "DEMO_ORDERS_INTERVAL": "0", "BEAT_LOCK_TTL": "1.5"}
    beats = [processes.beat(app_settings, **env).start(), processes.beat(app_settings, **env).start()]
    try:
        eventually(lambda: queued_tasks(bus_redis), timeout=30, what="the first beat to fire")
        start_count, started = len(queued_tasks(bus_redis)), time.monotonic()
        time.sleep(2.0)  # a rate, measured over a span of time
        fired = len(queued_tasks(bus_redis)) - start_count
        elapsed = time.monotonic() - started
        assert set(queued_tasks(bus_redis)) == {task_names.OUTBOX_RELAY}
        # one beat fires every 0.5 s: ~4 in 2 s; two beats would fire ~8
        assert 2 <= fired <= elapsed / interval + 1, fired

        holder = bus_redis.get("rakuda:beat:lock")
        (owner,) = [b for b in beats if f"beat {holder[:8]} took" in b.read_log()]
        owner.kill()
        before = len(queued_tasks(bus_redis))
        # The lock's TTL (1.5 s) passes, then the survivor takes it and fires every 0.5 s.
        eventually(lambda: len(queued_tasks(bus_redis)) - before >= 2, timeout=10, what="the survivor firing")
        assert bus_redis.get("rakuda:beat:lock") not in (None, holder)
    finally:
        for b in beats:
            b.stop()
