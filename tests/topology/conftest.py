"""The pipeline suite's fixtures (PostgreSQL schema, real Celery worker, fakes), for the Sentinel test."""

from tests.pipeline.conftest import (  # noqa: F401 - fixtures, found by pytest through this module
    app_settings,
    catalogue,
    celery_app,
    database_url,
    marketplace,
    migrated,
    pipeline_settings,
    runtime,
    supplier,
    worker,
)
