"""Outbox throughput: batches of events committed and published, against a plain INSERT + XADD ceiling.

    python -m bench.outbox_throughput [--batch 5000] [--rounds 10]

Both sides run in this process, in the same run, on a fresh PostgreSQL schema (TEST_DATABASE_URL)
and a private redis-server. The outbox side is ``Outbox.transaction`` with ``emit_all`` of
``--batch`` PRICE_CHANGE events (``RealTimeEvent``s): inserted, committed, published with
``publish_many`` (history stream + channel + stats) and marked sent. The ceiling is what any
outbox must at least do with the same events: encode them, one multi-row INSERT of the JSON
(psycopg2 ``execute_values``) into a table like the outbox's (same columns and keys, no
trigger), COMMIT, and one Redis pipeline of XADDs of it to a stream. events/s = events / wall
seconds over all rounds.

Each side is measured twice: ``outbox_events_per_s`` with the events made (validated) before
the clock starts, which is the outbox's own work, and ``..._with_making`` with each round's
events made in the loop, which is what a task pays in all for making and publishing them.

This process's garbage collector is set as the Celery worker sets it (``tasks/gc_tuning.py``),
for both sides: the outbox runs in a worker, and both sides make the same events.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from functools import partial

import psycopg2
import psycopg2.extras
import redis

from bench.pipeline import fresh_schema
from bench.systems import PrivateRedis
from shared.config import Settings
from shared.database import Database
from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent, RealTimeEventType
from tasks.gc_tuning import tune_for_batches
from tasks.outbox import Outbox
from tasks.schema import upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def events(batch: int, round_no: int) -> list[RealTimeEvent]:
    return [RealTimeEvent.create(RealTimeEventType.PRICE_CHANGE, round_no * batch + i, "updated",
                                 {"oldPrice": "100.00", "newPrice": "105.00", "currency": "USD",
                                  "listingId": round_no * batch + i, "marketplace": "EBAY", "kind": "listing"})
            for i in range(batch)]


Batches = Callable[[int], list[RealTimeEvent]]


def made_beforehand(batch: int, rounds: int, first_round: int = 1) -> Batches:
    """Each round's events, made before the clock starts: only what the outbox does is timed."""
    made = {first_round + r: events(batch, first_round + r) for r in range(rounds)}
    return made.__getitem__


def made_in_the_loop(batch: int) -> Batches:
    """Each round's events made when the round comes: a task's whole cost of publishing them."""
    return lambda round_no: events(batch, round_no)


def outbox_rate(outbox: Outbox, batches: Batches, batch: int, rounds: int, first_round: int = 1) -> tuple[float, int]:
    published = 0
    started = time.perf_counter()
    for r in range(first_round, first_round + rounds):
        with outbox.transaction() as changes:
            changes.emit_all(batches(r))
        published += changes.published
    return batch * rounds / (time.perf_counter() - started), published


def ceiling_rate(schema: str, redis_url: str, batches: Batches, batch: int, rounds: int,
                 first_round: int = 1) -> float:
    """INSERT into a table like the outbox's (same columns and keys, no trigger), COMMIT, XADD pipeline."""
    conn = psycopg2.connect(PG_URL, options=f"-csearch_path={schema}")
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS ceiling_events (LIKE outbox_events INCLUDING ALL)")
    conn.commit()
    client = redis.Redis.from_url(redis_url)
    started = time.perf_counter()
    for r in range(first_round, first_round + rounds):
        rows = [("rakuda:realtime:pricing", e.to_json()) for e in batches(r)]
        with conn.cursor() as cursor:
            psycopg2.extras.execute_values(
                cursor, "INSERT INTO ceiling_events (channel, event_json, created_at) VALUES %s",
                rows, template="(%s, %s, now())", page_size=batch)
        conn.commit()
        pipe = client.pipeline(transaction=False)
        for _channel, body in rows:
            pipe.xadd("bench:ceiling", {"e": body})
        pipe.execute()
    rate = batch * rounds / (time.perf_counter() - started)
    conn.close()
    client.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox_throughput")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    private = PrivateRedis().start()
    try:
        with fresh_schema(PG_URL) as (schema, url):
            upgrade(url)
            settings = Settings.from_env({}).replace(redis_url=private.url, database_url=url)
            db = Database()
            db.initialize(url)
            bus = EventBus()
            bus.initialize(settings)
            outbox = Outbox(db, bus)
            tune_for_batches()
            outbox_rate(outbox, made_in_the_loop(args.batch), args.batch, 1, first_round=0)  # warm-up
            # Each side twice: with the events made beforehand, then made in the loop. Rounds never
            # repeat an id: the ceiling's rounds start at 1, the outbox's after them, and so on.
            rows: dict[str, float | int] = {}
            for n, (label, make) in enumerate((("", partial(made_beforehand, args.batch, args.rounds)),
                                               ("_with_making", lambda _first: made_in_the_loop(args.batch)))):
                first = 1 + 2 * n * args.rounds
                ceiling = ceiling_rate(schema, private.url, make(first), args.batch, args.rounds, first)
                first += args.rounds
                rate, published = outbox_rate(outbox, make(first), args.batch, args.rounds, first)
                rows.update({f"outbox_events_per_s{label}": round(rate), f"outbox_published{label}": published,
                             f"ceiling_events_per_s{label}": round(ceiling), f"ratio{label}": round(rate / ceiling, 3)})
            bus.close()
            db.dispose()
    finally:
        private.stop()
    print(json.dumps({"batch": args.batch, "rounds": args.rounds, **rows, "load1": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
