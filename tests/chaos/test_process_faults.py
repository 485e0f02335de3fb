"""Process-level faults: the event loop blocked past the leeway, cancellation storms.

(A worker SIGKILLed while it holds the fleet lock is a multi-process test:
tests/integration/test_fleet.py::test_a_killed_lock_holder_does_not_block_the_fleet.)
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from chaos_harness import LoopWatch, hammer, log

import helpers
from helpers import IdpFactory
from tokenfleet import FileStore, RedisStore, Retry
from tokenfleet.testing import DevAuthServer, Fault

pytestmark = pytest.mark.slow


@pytest.fixture
def idp(tokenfleet_server_factory: IdpFactory) -> DevAuthServer:
    """The package's own fixture, with 2 s tokens."""
    return tokenfleet_server_factory(token_lifetime=2.0)


manager_for = partial(
    helpers.manager_for,
    client={"retry": Retry(attempts=2, backoff=0.05), "timeout": 2.0},
    min_backoff=0.2,
    max_backoff=1.0,
)


async def test_event_loop_blocked_longer_than_the_leeway(
    idp: DevAuthServer, loop_watch: LoopWatch
) -> None:
    """2 s tokens (usable 1.8 s): the loop freezes 2.5 s, twice, mid-run."""

    async def freeze() -> None:
        for delay in (1.0, 1.5):
            await asyncio.sleep(delay)
            time.sleep(2.5)  # noqa: ASYNC251 - the fault under test: a blocked loop

    async with manager_for(idp) as manager:
        await manager.get_token()
        _, result = await asyncio.gather(freeze(), hammer(manager, 8.0, callers=300))
    log.warning("loop blocked: %s", result.summary())
    assert not result.expired, result.expired[:3]  # never the token that aged meanwhile
    assert not result.errors, result.errors
    assert len(result.tokens) >= 3


@pytest.fixture(params=["memory", "file", pytest.param("redis", marks=pytest.mark.redis)])
async def store_kind(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, Any]]:
    if request.param == "memory":
        yield "memory", lambda: None
    elif request.param == "file":
        yield "file", lambda: FileStore(tmp_path / "tokens")
    else:
        url = request.getfixturevalue("redis_url")
        yield "redis", lambda: RedisStore(url)


async def test_cancellation_storm(
    idp: DevAuthServer, store_kind: tuple[str, Any], loop_watch: LoopWatch
) -> None:
    """1,000 callers cancelled at random points of their get_token, for 6 s, while tokens
    expire every 2 s, a third of the calls need a fresh token, and a fifth of the token
    requests fail or are slow."""
    kind, make_store = store_kind
    idp.latency = 0.02
    idp.inject_fault(Fault(status=503), ratio=0.1)
    idp.inject_fault(Fault(delay=0.3), ratio=0.1)
    cancelled = completed = 0
    deadline = time.monotonic() + 6.0

    async with manager_for(idp, make_store()) as manager:

        async def caller() -> None:
            nonlocal cancelled, completed
            while time.monotonic() < deadline:
                # min_ttl=1 sends a third of the calls to a flight (and the store's lock)
                min_ttl = random.choice([0.0, 0.0, 1.0])
                task = asyncio.ensure_future(manager.get_token(min_ttl=min_ttl))
                await asyncio.sleep(random.uniform(0, 0.03))
                if task.cancel():
                    cancelled += 1
                try:
                    await task
                    completed += 1
                except asyncio.CancelledError:
                    pass
                except Exception:  # noqa: S110 - failures are not the subject here
                    pass
                await asyncio.sleep(random.uniform(0, 0.05))

        async with asyncio.timeout(60):
            await asyncio.gather(*(caller() for _ in range(1000)))
        idp.clear_faults()
        idp.latency = 0.0
        async with asyncio.timeout(5):  # no stuck flight or lock: a token comes at once
            result = await hammer(manager, 1.0, callers=50)
        assert result.calls and not result.errors and not result.expired
        assert len(manager._flights) <= 1
    log.warning("cancellation storm (%s): %d cancelled, %d completed", kind, cancelled, completed)
    assert cancelled > 1000 and completed > 1000
    if kind == "redis":  # every lock released (not left to expire by its lease)
        store = make_store()
        async with aioredis.Redis.from_url(store._where) as admin:
            assert await admin.keys("*:lock") == []
        await store.aclose()
