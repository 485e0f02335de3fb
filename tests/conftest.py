"""Shared test settings and fixtures: one home for the servers every test file uses.

Servers come from factory fixtures, so a test (or a file, through a small fixture of its
own) states the settings it depends on, and the factory stops what it started:

- ``idp`` / ``idp_factory(**config)``: a ``DevAuthServer`` on the test's event loop.
- ``threaded_idp`` / ``module_idp_factory(**config)``: one in a background thread,
  shared by a module (hypothesis examples each run their own event loop).
- ``tokenfleet_server`` / ``tokenfleet_server_factory(**config)`` (the package's own
  pytest plugin, which users get too): in a background thread, for one test.

Plain helpers (``make_token``, ``client_for``, ``manager_for``) are in tests/helpers.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from hypothesis import HealthCheck, settings

from helpers import IdpFactory
from redis_server import RedisServer
from redis_topologies import Cluster, SentinelGroup
from tokenfleet.testing import DevAuthServer

Topology = TypeVar("Topology", SentinelGroup, Cluster)

# The machine is small and shared (2 cores): no per-example deadline, and no health check
# that fails a test because data generation was slow while another process ran.
settings.register_profile(
    "tokenfleet", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("tokenfleet")


# ---------------------------------------------------------------------- dev authorization servers


@pytest.fixture
async def idp_factory() -> AsyncIterator[Callable[..., Awaitable[DevAuthServer]]]:
    """``await idp_factory(**config)``: a started ``DevAuthServer`` on the test's loop."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**config: Any) -> DevAuthServer:
            return await stack.enter_async_context(DevAuthServer(**config))

        yield start


@pytest.fixture
async def idp(idp_factory: Callable[..., Awaitable[DevAuthServer]]) -> DevAuthServer:
    """A ``DevAuthServer`` with default settings on the test's event loop."""
    return await idp_factory()


@pytest.fixture(scope="module")
def module_idp_factory() -> Iterator[IdpFactory]:
    """``module_idp_factory(**config)``: servers in background threads, for one module.

    The module-scoped twin of the plugin's ``tokenfleet_server_factory``.
    """
    with contextlib.ExitStack() as stack:
        yield lambda **config: stack.enter_context(DevAuthServer(**config).run_in_thread())


@pytest.fixture(scope="module")
def threaded_idp(module_idp_factory: IdpFactory) -> DevAuthServer:
    """A default ``DevAuthServer`` in a thread, shared by the module's tests."""
    return module_idp_factory()


# ---------------------------------------------------------------------- a real redis-server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for the session; fails (never skips) when it is not installed."""
    try:
        server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's redis-server, running and emptied (FLUSHALL) for this test."""
    redis_server.start()  # a previous test may have stopped it
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


# ---------------------------------------------------------------------- Redis as deployed
# Sentinel and Cluster topologies of real redis-server processes (tests/redis_topologies.py).
# The session ones are shared by tests that leave them as they found them; a test that
# kills a primary asks the factory for its own, stopped at the end of that test.


def _start_topology(kind: type[Topology], workdir: Path) -> Topology:
    topology = kind(workdir)
    try:
        topology.start()
    except RuntimeError as exc:  # never skip: a missing redis is a failure
        topology.stop()
        pytest.fail(f"{kind.__name__}: {exc}", pytrace=False)
    return topology


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A primary, a replica and three sentinels (quorum 2), for the whole session."""
    group = _start_topology(SentinelGroup, tmp_path_factory.mktemp("sentinel"))
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Six cluster nodes, three primaries with a replica each, for the whole session."""
    cluster = _start_topology(Cluster, tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_topology_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[type[Topology]], Topology]]:
    """Start a fresh ``SentinelGroup`` or ``Cluster`` for one test (which may break it)."""
    started: list[SentinelGroup | Cluster] = []

    def start(kind: type[Topology]) -> Topology:
        topology = _start_topology(kind, tmp_path_factory.mktemp(kind.__name__.lower()))
        started.append(topology)
        return topology

    try:
        yield start
    finally:
        for topology in started:
            topology.stop()
