"""Redis misbehaving under load: killed and restarted, slow, full.

Two managers on one RedisStore stand for two processes (each has its own near cache and
flights; the multi-process version of the outage is test_fleet.py). With the fail-open
default, callers see no error; with ``fail_open=False`` they get a typed ``StoreError``
when a fetch needs the store; once Redis is back, the fleet shares one token again.

Slow Redis: ``DEBUG SLEEP`` is refused by Redis 7's default ``enable-debug-command no``,
so ``CLIENT PAUSE <ms> ALL`` (sent on a separate admin connection) stalls every command
instead: to a client it looks the same, a Redis that does not answer for a while.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from chaos_harness import LoopWatch, Result, hammer, log

import helpers
from helpers import IdpFactory
from redis_server import RedisServer
from tokenfleet import RedisStore, Retry, StoreError, TokenManager
from tokenfleet.testing import DevAuthServer

pytestmark = [pytest.mark.slow, pytest.mark.redis]

LIFETIME = 3.0
CLIENT = {"retry": Retry(attempts=2, backoff=0.1), "timeout": 2.0}


@pytest.fixture(scope="module")
def idp(module_idp_factory: IdpFactory) -> DevAuthServer:
    return module_idp_factory(token_lifetime=LIFETIME)


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    async with aioredis.Redis.from_url(redis_url) as client:
        yield client


def manager_for(idp: DevAuthServer, url: str, **kw: Any) -> TokenManager:
    """A manager on a RedisStore at ``url``, with this file's retry and backoff."""
    kw.setdefault("min_backoff", 0.5)
    kw.setdefault("max_backoff", 2.0)
    return helpers.manager_for(idp, RedisStore(url), client=CLIENT, **kw)


async def two_processes(
    idp: DevAuthServer, url: str, duration: float, fault: Any, **kw: Any
) -> list[Result]:
    """Hammer two managers for ``duration`` while ``fault()`` runs alongside."""
    async with manager_for(idp, url, **kw) as a, manager_for(idp, url, **kw) as b:
        runs = asyncio.gather(hammer(a, duration, callers=500), hammer(b, duration, callers=500))
        _, results = await asyncio.gather(fault(), runs)
    return list(results)


def judge(name: str, results: list[Result], requests: int) -> None:
    for result in results:
        log.warning("%s: %s", name, result.summary())
        assert not result.expired, result.expired[:3]
        assert not result.errors, result.errors  # fail open: no caller error at all
        assert result.calls > 5_000
    log.warning("%s: %d token requests", name, requests)


async def assert_shared_again(idp: DevAuthServer, url: str) -> None:
    """Two fresh processes get one token with at most one request between them."""
    before = idp.token_requests()
    async with manager_for(idp, url) as a, manager_for(idp, url) as b:
        first = await a.get_token()
        assert await b.get_token() == first
    assert idp.token_requests() - before <= 1


async def test_redis_killed_and_restarted_mid_run(
    idp: DevAuthServer, redis_server: RedisServer, redis_url: str, loop_watch: LoopWatch
) -> None:
    async def fault() -> None:
        await asyncio.sleep(2.5)
        redis_server.kill()  # SIGKILL: connections reset, nothing persisted
        await asyncio.sleep(3.0)
        await asyncio.to_thread(redis_server.start)

    idp.reset_counters()
    try:
        results = await two_processes(idp, redis_url, 10.0, fault)
    finally:
        redis_server.start()
    judge("redis killed", results, idp.token_requests())
    await assert_shared_again(idp, redis_url)


async def test_redis_down_fail_closed_is_a_store_error(
    idp: DevAuthServer, redis_server: RedisServer, redis_url: str, loop_watch: LoopWatch
) -> None:
    redis_server.kill()
    try:
        async with manager_for(idp, redis_url, fail_open=False, min_backoff=0.2) as manager:
            with pytest.raises(StoreError, match="Redis store"):
                await manager.get_token()
            await asyncio.to_thread(redis_server.start)
            await asyncio.sleep(0.3)  # the backoff after the failure
            assert await manager.get_token()
    finally:
        redis_server.start()
    await assert_shared_again(idp, redis_url)


async def test_slow_redis(
    idp: DevAuthServer, redis_url: str, admin: aioredis.Redis, loop_watch: LoopWatch
) -> None:
    async def fault() -> None:
        for _ in range(2):  # two stalls of 3 s, over refreshes
            await asyncio.sleep(1.5)
            await admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")
            await asyncio.sleep(3.0)

    idp.reset_counters()
    results = await two_processes(idp, redis_url, 10.0, fault)
    judge("slow redis", results, idp.token_requests())
    await assert_shared_again(idp, redis_url)


async def test_slow_redis_fail_closed_is_a_store_error(
    idp: DevAuthServer, redis_url: str, admin: aioredis.Redis, loop_watch: LoopWatch
) -> None:
    async with manager_for(idp, redis_url, fail_open=False) as manager:
        await admin.execute_command("CLIENT", "PAUSE", "4000", "ALL")
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"timed out|Timeout"):
            await manager.get_token()
        assert time.monotonic() - started < 3.9  # the store's timeout, not the pause
    await asyncio.sleep(max(0.0, 4.2 - (time.monotonic() - started)))
    await assert_shared_again(idp, redis_url)


async def test_redis_full(idp: DevAuthServer, redis_url: str, admin: aioredis.Redis) -> None:
    async def fault() -> None:
        await asyncio.sleep(1.0)
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")  # every write: OOM
        await asyncio.sleep(4.0)
        await admin.config_set("maxmemory", "0")

    idp.reset_counters()
    try:
        results = await two_processes(idp, redis_url, 8.0, fault)
        judge("redis full", results, idp.token_requests())
        await assert_shared_again(idp, redis_url)
        await admin.config_set("maxmemory", "1")
        async with manager_for(idp, redis_url, fail_open=False) as manager:
            await admin.delete(*(await admin.keys("*")) or ["-"])  # no token to read
            with pytest.raises(StoreError, match=r"OutOfMemory|maxmemory"):
                await manager.get_token()
    finally:
        await admin.config_set("maxmemory", "0")
