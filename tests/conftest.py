"""Fixtures shared by every test: an isolated Redis database, settings, real gateway servers.

Each test has a Redis database of its own (``redis_url``). Tests marked ``module_gateway``
(``pytestmark = pytest.mark.module_gateway`` for a whole module) share one gateway with the
default test settings per module instead of starting their own (a second or two each): their
``gateway`` is that one and their ``redis_url`` its database, drained and emptied before each
test (see tests/module_gateway.py), so that no test sees what another one left. A test there
that needs other settings, or stops its gateway, starts its own with ``gateway_factory``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from shared.config import Settings
from shared.event_bus import EventBus
from tests import ordering
from tests.fixtures import private_redis  # noqa: F401 - a fixture, found by pytest through this module
from tests.module_gateway import ModuleGateway
from tests.servers import GatewayServer

REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Databases 1..15 are handed out to tests; database 0 holds only the allocation locks,
# so that concurrent test runs (and xdist workers) on one machine never share a database.
_LOCK_PREFIX = "rakuda:test:dblock:"


def pytest_configure(config: pytest.Config) -> None:
    ordering.register(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ordering.longest_first(config, items)  # with xdist, the longest tests start first


@contextmanager
def locked_database() -> Iterator[str]:
    """URL of a Redis database that the caller alone uses, flushed before and after."""
    admin = redis.Redis.from_url(REDIS_BASE_URL + "/0")
    token = uuid.uuid4().hex
    try:
        for _attempt in range(600):
            for db in range(1, 16):
                if admin.set(_LOCK_PREFIX + str(db), token, nx=True, ex=900):
                    url = f"{REDIS_BASE_URL}/{db}"
                    client = redis.Redis.from_url(url)
                    client.flushdb()
                    try:
                        yield url
                    finally:
                        client.flushdb()
                        client.close()
                        if admin.get(_LOCK_PREFIX + str(db)) == token.encode():
                            admin.delete(_LOCK_PREFIX + str(db))
                    return
            time.sleep(0.5)
        raise RuntimeError("no free Redis database for this test (all 15 are locked)")
    finally:
        admin.close()


def default_settings(redis_url: str) -> Settings:
    """Test settings: the given Redis database, one API key, short intervals."""
    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "API_KEYS": "test-key",
            "ADMIN_API_KEYS": "test-key",  # the shared key may do everything; role tests set their own
            "SECRET_KEY": "test-secret",
            "SSE_HEARTBEAT_INTERVAL": "1000",
            "SSE_DEBOUNCE_WINDOW": "200",
            "REALTIME_REPORT_INTERVAL": "0.2",
            # Every test client is one key on one address: the per-client limits are lifted here,
            # and tests/test_stream_limits.py sets its own.
            "SSE_MAX_STREAMS_PER_KEY": "100000",
            "SSE_MAX_STREAMS_PER_ADDRESS": "100000",
            "SSE_NEW_STREAMS_PER_ADDRESS_RATE": "0",
        }
    )


def _shares_module_gateway(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("module_gateway") is not None


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a Redis database that this test alone uses, flushed before and after; for a test
    marked ``module_gateway``, the module gateway's database, emptied before the test."""
    if _shares_module_gateway(request):
        yield request.getfixturevalue("module_database")
        return
    with locked_database() as url:
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Test settings: isolated Redis, one API key, short intervals."""
    return default_settings(redis_url)


@pytest.fixture
def bus(settings: Settings) -> Iterator[EventBus]:
    """An EventBus bound to this test's Redis database."""
    bus = EventBus()
    bus.initialize(settings)
    yield bus
    bus.close()


@pytest.fixture
def gateway_factory(request: pytest.FixtureRequest, settings: Settings):
    """Start real gateways: ``gateway_factory(workers=1, forked=True, **env_overrides)``; all stopped
    after. ``forked=False`` runs the Procfile's command line in a new interpreter instead of forking it
    from the fork server (tests/forkserver.py): for tests about what happens while a process starts.

    On a database of the test's own (flushed after it) they are killed; on a module's shared one
    they stop, so that what a gateway does on its way out (it leaves the cluster) is done before
    the next test."""
    started: list[GatewayServer] = []
    shared_database = _shares_module_gateway(request)

    def start(workers: int = 1, forked: bool = True, **overrides: str) -> GatewayServer:
        env = settings.env_items()
        env.update({k: str(v) for k, v in overrides.items()})
        server = GatewayServer(env, workers=workers, forked=forked).start()
        started.append(server)
        return server

    yield start
    for server in started:
        if shared_database:
            server.stop(graceful=False)
        else:
            server.discard()


@pytest.fixture
def gateway(request: pytest.FixtureRequest, gateway_factory) -> GatewayServer:
    """One gateway process with the test settings (heartbeat 1 s, debounce 200 ms): the test's own,
    or, for a test marked ``module_gateway``, the one its module shares."""
    if _shares_module_gateway(request):
        return request.getfixturevalue("module_gateway").server
    return gateway_factory()


@pytest.fixture(scope="module")
def module_gateway() -> Iterator[ModuleGateway]:
    """One gateway with the test settings for a whole module, on a database of the module's own."""
    with locked_database() as url:
        shared = ModuleGateway(default_settings(url)).start()
        yield shared
        shared.stop()


@pytest.fixture
def module_database(module_gateway: ModuleGateway) -> str:
    """The module gateway's database, with nothing in it from an earlier test (and no batch of
    one still on its way to the gateway's clients). Use it as ``redis_url`` in a module that shares
    ``module_gateway`` as its ``gateway``."""
    return module_gateway.prepare_for_next_test()
