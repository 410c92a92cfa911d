"""Outbox throughput: batches of events committed and published, against a plain INSERT + XADD ceiling.

    python -m bench.outbox_throughput [--batch 5000] [--rounds 10]

Both sides run in this process, in the same run, on a fresh PostgreSQL schema (TEST_DATABASE_URL)
and a private redis-server. The outbox side is ``Outbox.transaction`` with ``emit_all`` of
``--batch`` PRICE_CHANGE events: validated, inserted, committed, published with ``publish_many``
(history stream + channel + stats) and marked sent. The ceiling is what any outbox must at least
do: one multi-row INSERT of the same JSON (psycopg2 ``execute_values``), COMMIT, and one Redis
pipeline of XADDs of it to a stream. events/s = events / wall seconds over all rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import psycopg2
import psycopg2.extras
import redis

from bench.pipeline import fresh_schema
from bench.systems import PrivateRedis
from shared.config import Settings
from shared.database import Database
from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent, RealTimeEventType
from tasks.outbox import Outbox
from tasks.schema import upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def events(batch: int, round_no: int) -> list[RealTimeEvent]:
    return [RealTimeEvent.create(RealTimeEventType.PRICE_CHANGE, round_no * batch + i, "updated",
                                 {"oldPrice": "100.00", "newPrice": "105.00", "currency": "USD",
                                  "listingId": round_no * batch + i, "marketplace": "EBAY", "kind": "listing"})
            for i in range(batch)]


def outbox_rate(outbox: Outbox, batch: int, rounds: int) -> tuple[float, int]:
    published = 0
    started = time.perf_counter()
    for r in range(rounds):
        with outbox.transaction() as changes:
            changes.emit_all(events(batch, r))
        published += changes.published
    return batch * rounds / (time.perf_counter() - started), published


def ceiling_rate(schema: str, redis_url: str, batch: int, rounds: int) -> float:
    conn = psycopg2.connect(PG_URL, options=f"-csearch_path={schema}")
    client = redis.Redis.from_url(redis_url)
    started = time.perf_counter()
    for r in range(rounds):
        rows = [("rakuda:realtime:pricing", e.to_json()) for e in events(batch, r)]
        with conn.cursor() as cursor:
            psycopg2.extras.execute_values(
                cursor, "INSERT INTO outbox_events (channel, event_json, created_at) VALUES %s",
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
            outbox_rate(outbox, args.batch, 1)  # warm-up: connections, caches
            ceiling = ceiling_rate(schema, private.url, args.batch, args.rounds)
            rate, published = outbox_rate(outbox, args.batch, args.rounds)
            bus.close()
            db.dispose()
    finally:
        private.stop()
    print(json.dumps({"batch": args.batch, "rounds": args.rounds, "outbox_events_per_s": round(rate),
                      "outbox_published": published, "ceiling_events_per_s": round(ceiling),
                      "ratio": round(rate / ceiling, 3), "load1": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
