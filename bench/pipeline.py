"""The pipeline scenario: a price sync over N listings, through the outbox, to SSE clients.

What production does, on a fresh PostgreSQL schema: the listings are seeded with prices 5 %
below what the formula gives, so the sync must reprice every one of them; a real Celery
worker (``celery -A tasks.worker worker``, the Procfile's command, sandbox marketplace) runs
the sync that ``rakuda prices sync`` queues; each repriced batch commits its PRICE_CHANGE
events to the outbox and publishes them after the commit; the gateway streams them to a
few clients subscribed to ``pricing``.

Measured from the moment ``rakuda prices sync`` is started: the time until the last listing
was repriced (its price_history row), until the last outbox row was published, and until the
last PRICE_CHANGE event reached the clients (the last publish: the time in the history
stream's newest entry id); events/s end to end; the batch tasks run (one ``publish_many``
each); the worker's peak RSS and CPU.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import redis

from bench import procstat
from bench.harness import Plan, profiled, running, wait_for
from bench.loadclient import LoadClient
from bench.systems import ROOT
from shared.constants import HISTORY_STREAM

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
EBAY = {"platform_fee_rate": Decimal("0.1325"), "payment_fee_rate": Decimal("0.03"), "ad_rate": Decimal("0.02"),
        "profit_rate": Decimal("0.15"), "default_shipping_usd": Decimal("15.00")}
JOOM = {"platform_fee_rate": Decimal("0.15"), "payment_fee_rate": Decimal("0.03"), "ad_rate": Decimal("0"),
        "profit_rate": Decimal("0.20"), "default_shipping_usd": Decimal("0")}
RATE = Decimal("0.0067")
PIPELINE_LAZY_S = float(os.environ.get("BENCH_PIPELINE_LAZY_S", "0"))
BELOW = Decimal("0.95")  # seeded prices are 5 % under the computed price: every listing moves > 1 %


@contextlib.contextmanager
def fresh_schema(pg_url: str):
    """A new PostgreSQL schema (its URL), dropped afterwards whatever happens."""
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema, f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def seed(database_url: str, listings: int) -> dict[str, Any]:
    """Tables (the Alembic migrations), price settings, a rate, listings/2 products with an eBay and a Joom
    listing each, ACTIVE, priced 5 % under the formula. Returns the seeding figures."""
    from sqlalchemy import insert

    from shared.database import Database
    from shared.models import ExchangeRate, Listing, ListingStatus, Marketplace, PriceSetting, Product, ProductSource
    from tasks.pricing import CENT, Fees, listing_price, shipping_usd
    from tasks.schema import upgrade

    t0 = time.monotonic()
    upgrade(database_url)
    migrated_s = time.monotonic() - t0
    fees = {"EBAY": Fees("EBAY", **EBAY), "JOOM": Fees("JOOM", **JOOM)}
    products, rows = [], []
    for pid in range(1, (listings + 1) // 2 + 1):
        jpy, grams = 3000 + (pid * 7919) % 60000, 100 + (pid * 131) % 2400
        products.append({"id": pid, "source": ProductSource.MERCARI, "source_item_id": f"m{pid:09d}",
                         "source_url": f"https://jp.mercari.com/item/m{pid:09d}", "title": f"Bench item {pid}",
                         "purchase_price_jpy": jpy, "weight_grams": grams, "is_available": True})
        for mp in ("EBAY", "JOOM"):
            if len(rows) == listings:
                break
            shipping = shipping_usd(mp, grams, fees[mp])
            price = listing_price(jpy, RATE, shipping, fees[mp])
            rows.append({"product_id": pid, "marketplace": Marketplace(mp), "sku": f"B-{mp[0]}{pid:08d}",
                         "marketplace_listing_id": f"{mp.lower()}-{pid}", "currency": "USD",
                         "listing_price": (price * BELOW).quantize(CENT), "shipping_cost": shipping,
                         "status": ListingStatus.ACTIVE})
    database = Database().initialize(database_url)
    try:
        with database.transaction() as session:
            session.add_all([PriceSetting(marketplace=Marketplace.EBAY, **EBAY),
                             PriceSetting(marketplace=Marketplace.JOOM, **JOOM), ExchangeRate(rate=RATE)])
            for start in range(0, len(products), 5000):
                session.execute(insert(Product), products[start:start + 5000])
            for start in range(0, len(rows), 5000):
                session.execute(insert(Listing), rows[start:start + 5000])
        with database.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        database.dispose()
    return {"listings": len(rows), "products": len(products), "migrate_s": round(migrated_s, 2),
            "seed_s": round(time.monotonic() - t0, 2)}


class Worker:
    """``celery -A tasks.worker worker`` as the Procfile runs it, on this schema and this Redis."""

    def __init__(self, env: dict[str, str], concurrency: int) -> None:
        self.env, self.concurrency = env, concurrency
        self.log = tempfile.NamedTemporaryFile(prefix="bench-celery-", suffix=".log", delete=False)
        self.proc: subprocess.Popen | None = None
        self.peak_rss_kb = 0
        self.peak_child_rss_kb = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def start(self, timeout: float = 60.0) -> Worker:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "--loglevel=INFO",
             f"--concurrency={self.concurrency}", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while " ready." not in Path(self.log.name).read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"celery worker not ready after {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.1)
        self._sampler.start()
        return self

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *procstat.children(self.proc.pid)]

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(OSError):
                rss = [procstat.rss_kb(pid) for pid in self.pids()]
                self.peak_rss_kb = max(self.peak_rss_kb, sum(rss))
                self.peak_child_rss_kb = max(self.peak_child_rss_kb, max(rss[1:], default=0))

    @contextlib.contextmanager
    def profiled(self, profile_dir: str | None, label: str):
        """py-spy the worker and its pool processes (``--subprocesses``) while the body runs."""
        spy = Path(sys.executable).with_name("py-spy")
        if not profile_dir or not spy.exists():
            yield
            return
        out = Path(profile_dir) / f"{label}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        assert self.proc is not None
        spy_proc = subprocess.Popen([str(spy), "record", "--pid", str(self.proc.pid), "--subprocesses", "--rate",
                                     "100", "--format", "raw", "--output", str(out), "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
        try:
            yield
        finally:
            spy_proc.send_signal(signal.SIGINT)
            try:
                spy_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy_proc.kill()
                spy_proc.wait()

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += procstat.cpu_seconds(pid)
        return total

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def count_in_log(self, text: str) -> int:
        return Path(self.log.name).read_text(errors="replace").count(text)

    def stop(self, keep_log: bool = False) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the worker and its pool only
                self.proc.wait(timeout=10)
        self.log.close()
        if not keep_log:
            Path(self.log.name).unlink(missing_ok=True)


def _db_progress(cursor: Any) -> tuple[int, float | None]:
    cursor.execute("SELECT count(*), max(created_at) FROM price_history")
    count, last = cursor.fetchone()
    return count, last.timestamp() if last else None


def _last_published(redis_url: str) -> float | None:
    """When the last event was published: the time in the id of the history stream's newest entry."""
    client = redis.Redis.from_url(redis_url)
    try:
        newest = client.xrevrange(HISTORY_STREAM, count=1)
    finally:
        client.close()
    return int(newest[0][0].split(b"-")[0]) / 1000 if newest else None


def pipeline(plan: Plan, lc: LoadClient, name: str) -> list[dict[str, Any]]:
    """Seed, start gateway + clients + worker, run ``rakuda prices sync``, time it to the last event."""
    if name != "gateway":
        return []  # the pipeline publishes through this project's bus only
    n = plan.pipeline_listings
    row: dict[str, Any] = {"system": name, "clients": plan.pipeline_clients,
                           "concurrency": plan.pipeline_concurrency}
    with fresh_schema(plan.pipeline_pg_url) as (schema, database_url):
        row.update(seed(database_url, n))
        expected = row["listings"]
        with running(name, plan, debounce_ms=plan.pipeline_window_ms) as system:
            opened = lc.connect("127.0.0.1", system.port, system.stream_path + "?channels=pricing",
                                system.stream_headers(), plan.pipeline_clients, timeout=30)
            clients = opened["ok"]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "SSE_", "REALTIME_"))}
            env.update({"DATABASE_URL": database_url, "REDIS_URL": plan.redis_url,
                        "CELERY_BROKER_URL": plan.redis_url, "MARKETPLACE_API_URL": "",
                        "SUPPLIER_API_URL": "", "REALTIME_HISTORY_MAX": "200000", "PYTHONUNBUFFERED": "1"})
            worker = Worker(env, plan.pipeline_concurrency)
            failed = True
            try:
                worker.start()
                time.sleep(0.5)
                spying = contextlib.ExitStack()
                spying.enter_context(profiled(plan, system, f"pipeline-{name}-{n}"))
                spying.enter_context(worker.profiled(plan.profile_dir, f"pipeline-worker-{n}"))
                # The few streams read as soon as data arrives: a lazy reader (one 256 KB read per stream
                # every 50 ms, ~5 MB/s) would alone take ~4 s for 50,000 events of ~400 bytes.
                lc.mark(lazy=PIPELINE_LAZY_S)
                cpu0, rss0 = worker.cpu_s(), sum(procstat.rss_kb(pid) for pid in worker.pids())
                gateway_cpu0 = system.cpu_s()
                t0 = time.time()
                cli = subprocess.run([sys.executable, "-m", "tasks.cli", "prices", "sync"], cwd=ROOT, env=env,
                                     capture_output=True, text=True, timeout=60)
                row["trigger_s"] = round(time.time() - t0, 2)
                if cli.returncode != 0:
                    raise RuntimeError(f"rakuda prices sync failed: {cli.stdout}{cli.stderr}")
                conn = psycopg2.connect(plan.pipeline_pg_url, options=f"-csearch_path={schema}")
                conn.autocommit = True
                try:
                    with conn.cursor() as cursor:
                        deadline, seen, moved = time.monotonic() + plan.pipeline_limit_s, -1, time.monotonic()
                        while True:
                            count, last = _db_progress(cursor)
                            if count != seen:
                                seen, moved = count, time.monotonic()
                            if count >= expected or time.monotonic() > deadline or time.monotonic() - moved > 60:
                                break
                            time.sleep(0.25)
                        db_seen = time.time()
                        totals = wait_for(lc, 120, events=expected * clients, idle_s=10)
                        worker_cpu = worker.cpu_s() - cpu0
                        gateway_cpu = system.cpu_s() - gateway_cpu0
                        spying.close()
                        batches_done = worker.count_in_log("succeeded in")
                        cursor.execute("SELECT count(*), count(*) - (SELECT count(*) FROM outbox_unsent), "
                                       "min(created_at) FROM outbox_events")
                        rows, sent, first_row = cursor.fetchone()
                        last_sent = _last_published(plan.redis_url)
                        cursor.execute("SELECT count(*) FROM listings WHERE status = 'ACTIVE' AND "
                                       "listing_price IS NOT NULL AND shipping_cost IS NOT NULL")
                        active = cursor.fetchone()[0]
                finally:
                    conn.close()
                failed = False
            finally:
                worker.stop(keep_log=failed)
                if failed:
                    print(f"celery worker log kept: {worker.log.name}", file=sys.stderr)
            ms0 = t0 * 1000
            last_ms = totals.last_ms
            end_s = (last_ms - ms0) / 1000 if last_ms else None
            row.update({
                "active_listings": active, "repriced": count, "outbox_rows": rows, "outbox_published": sent,
                "tasks_done": batches_done,
                "db_done_s": round(last - t0, 2) if last else None,
                "db_seen_s": round(db_seen - t0, 2),
                "first_outbox_row_s": round(first_row.timestamp() - t0, 2) if first_row else None,
                "last_published_s": round(last_sent - t0, 2) if last_sent else None,
                "first_event_s": round((totals.first_ms - ms0) / 1000, 2) if totals.first_ms else None,
                "last_event_s": round(end_s, 2) if end_s else None,
                "events_expected": expected * clients, "events": totals.events, "announced": totals.announced,
                "events_per_client": round(totals.events / clients) if clients else 0,
                "events_per_s": round(count / end_s) if end_s else None,
                "events_per_s_publishing": (round(sent / (last_sent - first_row.timestamp()))
                                            if sent and last_sent and first_row else None),
                "worker_cpu_s": round(worker_cpu, 1), "gateway_cpu_s": round(gateway_cpu, 1),
                "worker_rss0_mb": round(rss0 / 1024, 1),
                "worker_peak_rss_mb": round(worker.peak_rss_kb / 1024, 1),
                "worker_peak_child_rss_mb": round(worker.peak_child_rss_kb / 1024, 1),
            })
            lc.close_all()
    return [row]
