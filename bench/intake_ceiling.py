"""The intake ceiling: a bare Flask endpoint that stores each POSTed body with one psycopg2 INSERT.

    gunicorn -c gateway/gunicorn_conf.py 'bench.intake_ceiling:create_app()'

The least any durable webhook intake must do on this stack: read the body, INSERT it, COMMIT,
answer 202 with the new id. No signature check, no parsing, no duplicate check, no broker.
It runs under the gateway's own gunicorn config (gevent, psycogreen patched in ``post_fork``),
on the table ``intake_ceiling`` of the schema named by DATABASE_URL's search_path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, jsonify, request
from psycopg2.pool import ThreadedConnectionPool

TABLE_SQL = "CREATE TABLE IF NOT EXISTS intake_ceiling (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)"


def dsn(database_url: str) -> str:
    """The libpq form of a SQLAlchemy-style URL (``postgresql+psycopg2://`` → ``postgresql://``)."""
    return database_url.replace("postgresql+psycopg2://", "postgresql://", 1)


def create_app() -> Flask:
    app = Flask(__name__)
    # As many connections as the gateway's SQLAlchemy pool (pool_size 5 + max_overflow 5).
    pool = ThreadedConnectionPool(1, 10, dsn(os.environ["DATABASE_URL"]))
    # The pool raises when empty; callers wait their turn instead (gevent patches the semaphore).
    turns = threading.BoundedSemaphore(10)

    @contextmanager
    def connection() -> Iterator[Any]:
        with turns:
            conn = pool.getconn()
            try:
                yield conn
            finally:
                pool.putconn(conn)

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok"})

    @app.post("/api/webhooks/<provider>")
    def store(provider: str) -> Any:
        body = request.get_data().decode("utf-8")
        with connection() as conn, conn.cursor() as cursor:
            cursor.execute("INSERT INTO intake_ceiling (body) VALUES (%s) RETURNING id", (body,))
            row_id = cursor.fetchone()[0]
            conn.commit()
        return jsonify({"status": "accepted", "id": row_id}), 202

    return app
