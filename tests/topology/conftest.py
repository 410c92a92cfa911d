"""The pipeline suite's fixtures (PostgreSQL schema, real Celery worker, fakes), for the Sentinel test;
and, under pytest-xdist, an address range of each worker's own for the network-namespace tests."""

import os

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
from tests.topology.netns import subnet_from_env


def _subnet_of_this_worker() -> None:
    """Under pytest-xdist each worker (gw0, gw1, ...) takes the next /24 after the run's own
    (RAKUDA_TOPOLOGY_SUBNET, three octets), so no two workers' hosts share an address range."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not name.startswith("gw"):
        return
    first, second, third = subnet_from_env().split(".")
    os.environ["RAKUDA_TOPOLOGY_SUBNET"] = f"{first}.{second}.{(int(third) + int(name[2:])) % 256}"


_subnet_of_this_worker()
