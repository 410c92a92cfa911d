"""The pipeline's fixtures (a PostgreSQL schema, a real Celery worker) for the operability tests."""

from tests.pipeline.conftest import *  # noqa: F403  (fixtures are found by name)
