"""The SQLAlchemy engine and sessions, unbound until ``initialize()`` (shared by tasks and gateway).

DATABASE_URL picks the database: PostgreSQL in CI and production, SQLite as the embedded
default. A URL may carry ``?options=-csearch_path%3Dname`` to work in one PostgreSQL schema
(the tests give each test its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def driver_url(url: str) -> str:
    """``url`` with the driver spelled out: plain ``postgresql://`` means psycopg2 here.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; this project ships psycopg2
    (patched for gevent in the gateway by psycogreen).
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so a worker and a gateway can share it."""
    url = driver_url(url)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 5)
    return create_engine(url, **kwargs)


class Database:
    """One engine and session factory per process; ``dispose()`` after a fork."""

    def __init__(self) -> None:
        self.url: str | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    def initialize(self, url: str, **engine_kwargs: Any) -> Database:
        self.dispose()
        self.url = url
        self._engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        return self

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Database is not initialized: call initialize(DATABASE_URL) first")
        return self._engine

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def new_session(self) -> Session:
        if self._sessions is None:
            raise RuntimeError("Database is not initialized: call initialize(DATABASE_URL) first")
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any exception."""
        session = self.new_session()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._sessions = None


db = Database()
