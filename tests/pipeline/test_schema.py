"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from shared.database import make_engine
from shared.models import Base
from tasks.schema import alembic_config, upgrade


def test_migrated_schema_matches_the_models(migrated):
    engine = make_engine(migrated.database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_unsent_rows_survive_the_migration_to_outbox_unsent_and_back(backend, database_url, tmp_path):
    """Rows written before the outbox kept its unsent ids apart: the unpublished ones stay to be
    published, the published ones do not come back, and rows written after are unsent too."""
    url = database_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'rakuda.db'}"
    upgrade(url, "0005")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO outbox_events (id, channel, event_json, created_at, published_at) "
                                    "VALUES (1, 'c', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), "
                                    "(2, 'c', '{}', CURRENT_TIMESTAMP, NULL)"))
        upgrade(url)
        with engine.begin() as connection:
            assert list(connection.scalars(text("SELECT id FROM outbox_unsent"))) == [2]
            connection.execute(text("INSERT INTO outbox_events (id, channel, event_json, created_at) "
                                    "VALUES (3, 'c', '{}', CURRENT_TIMESTAMP)"))
            assert list(connection.scalars(text("SELECT id FROM outbox_unsent ORDER BY id"))) == [2, 3]
        command.downgrade(alembic_config(url), "0005")
        with engine.begin() as connection:
            unsent = connection.scalars(text("SELECT id FROM outbox_events WHERE published_at IS NULL ORDER BY id"))
            assert list(unsent) == [2, 3]
    finally:
        engine.dispose()
