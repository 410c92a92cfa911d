"""Webhook intake: signed Joom and eBay deliveries into one gateway worker on PostgreSQL, against a ceiling.

    python -m bench.webhook_intake [--count 12000] [--connections 32] [--rate 500] [--seconds 10] [--no-bounds]
                                   [--senders 2] [--profile DIR] [--json FILE] [--smoke]
    python -m bench --scenarios intake

First the two bounds, closed loop only: ``echo`` (a bare asyncio responder: the sender's own
ceiling, which must be far above the servers') and ``floor`` (gunicorn + Flask answering 202
with no work: what one worker of this stack does at most). Then, on a fresh PostgreSQL schema
(TEST_DATABASE_URL, the Alembic migrations) and a private redis-server (the Celery broker), each
server in turn (``ceiling``, then ``gateway``; see bench/intake_servers.py) gets a warm-up, then

* ``closed``: ``--count`` unique signed deliveries from ``--connections`` keep-alive connections
  sending back to back: accepted/s = 2xx answers / wall seconds;
* ``open``: ``--rate`` deliveries/s for ``--seconds`` on a fixed schedule: p50/p99 from each
  delivery's scheduled send time to its answer.

Then the gateway again with its broker unreachable (a closed port) for an open-loop run, then
a real Celery worker (the Procfile's command) and the webhook sweep, sent until no delivery is
PENDING: stored rows, 2xx answers and deliveries processed after the sweep are counted.
Sender and server share this machine's CPUs; the sender's own CPU is reported with every row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import redis

from bench import intake_sender
from bench.intake_ceiling import TABLE_SQL
from bench.intake_servers import EBAY_SECRET, JOOM_SECRET, IntakeServer, port_in_range, profiled
from bench.pipeline import Worker, fresh_schema
from bench.systems import PrivateRedis
from shared.task_names import WEBHOOK_SWEEP
from tasks.schema import upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# BENCH_PORTS=24000-24099 moves every server of the run into that range.
PORTS = tuple(int(p) for p in os.environ.get("BENCH_PORTS", "16500-16599").split("-", 1))
QUEUE = "rakuda"  # the Celery queue the gateway sends to (task_default_queue)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2) if len(values) > 1 \
        else round(values[0], 2)


def count_rows(schema: str, sql: str) -> int:
    with psycopg2.connect(PG_URL, options=f"-csearch_path={schema}") as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    conn.close()
    return int(value)


def measure(server: IntakeServer, schema: str, table: str | None, mode: str, count: int, args: argparse.Namespace,
            profile: Path | None = None) -> dict[str, Any]:
    """Send ``count`` deliveries to ``server``; the row of figures (stored counted in ``table``, if any)."""
    target = intake_sender.Target("127.0.0.1", server.port, JOOM_SECRET, EBAY_SECRET)
    stored0 = count_rows(schema, f"SELECT count(*) FROM {table}") if table else 0
    cpu0, load = server.cpu_s(), os.getloadavg()[0]
    with profiled(server.worker_pid, profile):
        result, wall = intake_sender.send(target, uuid.uuid4().hex[:10], count, mode=mode,
                                          processes=args.senders, connections=args.connections, rate=args.rate)
    server_cpu = server.cpu_s() - cpu0
    accepted = sum(n for status, n in result.statuses.items() if 200 <= status < 300)
    return {"system": server.name, "mode": mode, "sent": count, "accepted": accepted,
            "statuses": dict(result.statuses), "errors": result.errors, "queued": result.queued,
            "stored": count_rows(schema, f"SELECT count(*) FROM {table}") - stored0 if table else None,
            "wall_s": round(wall, 3), "accepted_per_s": round(accepted / wall) if wall > 0 else None,
            "connections": args.connections if mode == "closed" else None,
            "rate": args.rate if mode == "open" else None,
            "p50_ms": percentile(result.latencies_ms, 50), "p99_ms": percentile(result.latencies_ms, 99),
            "max_ms": round(max(result.latencies_ms), 2) if result.latencies_ms else None,
            "server_cpu_pct": round(100 * server_cpu / wall, 1), "sender_cpu_pct": round(100 * result.cpu_s / wall, 1),
            "sender_processes": args.senders, "load1_before": round(load, 2), "load1_after": os.getloadavg()[0]}


TABLES = {"ceiling": "intake_ceiling", "gateway": "webhook_events"}


def measure_bound(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The closed-loop rate of ``echo`` (the sender's own ceiling) or ``floor`` (gunicorn + Flask, no work)."""
    server = IntakeServer(name, port_in_range(*PORTS), {}).start()
    try:
        measure(server, "", None, "closed", max(args.warmup, 1), args)
        return measure(server, "", None, "closed", args.count, args)
    finally:
        server.stop()


def measure_server(name: str, schema: str, env: dict[str, str], args: argparse.Namespace) -> list[dict[str, Any]]:
    table = TABLES[name]
    server = IntakeServer(name, port_in_range(*PORTS), env).start()
    try:
        rows = []
        if args.warmup:
            rows.append(measure(server, schema, table, "closed", args.warmup, args))  # connections, caches
            rows[-1]["mode"] = "warm-up"
        profile = Path(args.profile) / f"intake-{name}-closed.txt" if args.profile else None
        rows += [measure(server, schema, table, "closed", args.count, args, profile),
                measure(server, schema, table, "open", int(args.rate * args.seconds), args)]
    except Exception:
        print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        server.stop()
    return rows


def sweep_until_done(schema: str, broker: redis.Redis, worker_env: dict[str, str], timeout: float) -> dict[str, Any]:
    """A real worker and the webhook sweep, sent whenever the queue is empty, until nothing is PENDING."""
    from celery import Celery

    client = Celery("bench-intake", broker=worker_env["CELERY_BROKER_URL"], set_as_current=False)
    client.conf.task_default_queue = QUEUE
    worker = Worker(worker_env, concurrency=2).start()
    started, sweeps = time.monotonic(), 0
    pending_sql = "SELECT count(*) FROM webhook_events WHERE status = 'PENDING'"
    try:
        while time.monotonic() - started < timeout:
            # Tasks a worker prefetched may still be running: a sweep then queues a few twice,
            # which is harmless (a delivery is applied once) and is what the periodic sweep does too.
            if broker.llen(QUEUE) == 0:
                if count_rows(schema, pending_sql) == 0:
                    break
                client.send_task(WEBHOOK_SWEEP)
                sweeps += 1
            time.sleep(0.5)
        return {"sweeps": sweeps, "sweep_wall_s": round(time.monotonic() - started, 1),
                "still_pending": count_rows(schema, pending_sql),
                "processed": count_rows(schema, "SELECT count(*) FROM webhook_events WHERE attempts > 0"),
                "completed": count_rows(schema, "SELECT count(*) FROM webhook_events WHERE status = 'COMPLETED'")}
    finally:
        worker.stop()
        client.close()


def measure_outage(schema: str, env: dict[str, str], args: argparse.Namespace,
                   broker: redis.Redis) -> dict[str, Any]:
    """The gateway with its broker unreachable for the whole run, then the sweep with a worker."""
    with psycopg2.connect(PG_URL, options=f"-csearch_path={schema}") as conn, conn.cursor() as cursor:
        cursor.execute("TRUNCATE webhook_events")  # only this run's deliveries from here on
    conn.close()
    broker.delete(QUEUE)
    dead = port_in_range(PORTS[0] + 50, PORTS[1])  # nothing listens there
    server = IntakeServer("gateway", port_in_range(*PORTS), {**env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{dead}/0"})
    server.start()
    try:
        row = measure(server, schema, "webhook_events", "open", int(args.rate * args.seconds), args)
    finally:
        server.stop()
    row["mode"] = "open, broker down"
    worker_env = {k: v for k, v in env.items() if not k.startswith(("CELERY_", "SSE_", "REALTIME_"))}
    worker_env.update({"CELERY_BROKER_URL": env["REDIS_URL"], "MARKETPLACE_API_URL": "", "SUPPLIER_API_URL": "",
                       "WEBHOOK_SWEEP_AFTER": "0", "PYTHONUNBUFFERED": "1"})
    row.update(sweep_until_done(schema, broker, {**os.environ, **worker_env}, timeout=args.sweep_timeout))
    return row


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    private = PrivateRedis()
    private.port = port_in_range(*PORTS)
    private.url = f"redis://127.0.0.1:{private.port}/0"
    private.start()
    broker = redis.Redis.from_url(private.url)
    try:
        with fresh_schema(PG_URL) as (schema, url):
            upgrade(url)
            with psycopg2.connect(PG_URL, options=f"-csearch_path={schema}") as conn, conn.cursor() as cursor:
                cursor.execute(TABLE_SQL)
            conn.close()
            env = {"DATABASE_URL": url, "REDIS_URL": private.url, "CELERY_BROKER_URL": private.url}
            rows = [measure_bound(name, args) for name in ("echo", "floor") if args.bounds]
            for row in rows:
                print(json.dumps(row), file=sys.stderr, flush=True)
            for name in ("ceiling", "gateway"):
                rows += measure_server(name, schema, env, args)
                if name == "gateway":  # every 202 of the warm-up, closed and open runs, in the queue
                    rows[-1]["queued_in_broker_all_runs"] = broker.llen(QUEUE)
                for row in rows[-3 if args.warmup else -2:]:
                    print(json.dumps(row), file=sys.stderr, flush=True)  # progress: a stopped run keeps these
            rows.append(measure_outage(schema, env, args, broker))
            return rows
    finally:
        broker.close()
        private.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_intake", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=12000, help="deliveries in the closed-loop run")
    parser.add_argument("--connections", type=int, default=32, help="concurrent senders in the closed-loop run")
    parser.add_argument("--rate", type=float, default=500.0, help="deliveries/s in the open-loop runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each open-loop run")
    parser.add_argument("--warmup", type=int, default=200, help="deliveries sent before each server is measured")
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--sweep-timeout", type=float, default=300.0)
    parser.add_argument("--profile", metavar="DIR", help="py-spy each server's worker in the closed-loop run")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--no-bounds", dest="bounds", action="store_false",
                        help="skip the echo (sender) and floor (gunicorn + Flask) rows")
    parser.add_argument("--smoke", action="store_true", help="a few dozen deliveries, no bounds rows (tests)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.count, args.connections, args.rate, args.seconds, args.senders, args.warmup = 60, 4, 40.0, 1.0, 1, 0
        args.bounds = False
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"# webhook intake {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load {os.getloadavg()}",
          flush=True)
    rows = run(args)
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
