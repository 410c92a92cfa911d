"""The trigger that records every new outbox row as unsent, in the statement that inserts it.

Publishing an outbox row deletes its id from ``outbox_unsent``: a narrow row, where marking
the event row itself sent would rewrite the whole row (its JSON included) and its index
entries. The trigger makes every insert count, however it was made (ORM, COPY, SQL). On
PostgreSQL it fires once per statement and copies the new ids from the statement's
transition table; on SQLite it fires per row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

_PG_FUNCTION = """
CREATE FUNCTION outbox_mark_unsent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox_unsent (id) SELECT id FROM new_outbox_rows;
  RETURN NULL;
END
$$"""
_PG_TRIGGER = """
CREATE TRIGGER outbox_events_unsent AFTER INSERT ON outbox_events
REFERENCING NEW TABLE AS new_outbox_rows FOR EACH STATEMENT EXECUTE FUNCTION outbox_mark_unsent()"""
_SQLITE_TRIGGER = """
CREATE TRIGGER outbox_events_unsent AFTER INSERT ON outbox_events
BEGIN INSERT INTO outbox_unsent (id) VALUES (NEW.id); END"""

CREATE = {"postgresql": [_PG_FUNCTION, _PG_TRIGGER], "sqlite": [_SQLITE_TRIGGER]}
DROP = {"postgresql": ["DROP TRIGGER IF EXISTS outbox_events_unsent ON outbox_events",
                       "DROP FUNCTION IF EXISTS outbox_mark_unsent()"],
        "sqlite": ["DROP TRIGGER IF EXISTS outbox_events_unsent"]}


def create_trigger(_table: Any, connection: Connection, **_kw: Any) -> None:
    """Create the trigger on ``connection``'s database (other databases: none, rows stay unsent)."""
    for statement in CREATE.get(connection.dialect.name, []):
        connection.exec_driver_sql(statement)


def drop_trigger(connection: Connection) -> None:
    for statement in DROP.get(connection.dialect.name, []):
        connection.exec_driver_sql(statement)
