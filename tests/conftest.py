"""Shared test settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, settings

from redis_server import RedisServer

# The machine is small and shared (2 cores): no per-example deadline, and no health check
# that fails a test because data generation was slow while another process ran.
settings.register_profile(
    "tokenfleet", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("tokenfleet")


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
