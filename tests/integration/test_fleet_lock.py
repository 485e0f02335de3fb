"""The fleet lock of the shared stores under faults: slow lease renewals, waiters that
must see the token land, a lock held past ``lock_timeout``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from tokenfleet import Token
from tokenfleet.stores import RedisStore

LEASE = 0.6


def make_token(access: str = "access-1", lifetime: float = 60.0) -> Token:
    now = time.time()
    return Token(access_token=access, expires_at=now + lifetime, issued_at=now)


def slow_renewals(client: aioredis.Redis, delay: float, count: int) -> list[float]:
    """Delay the first ``count`` lease renewals sent through ``client`` by ``delay`` s.

    The fault is injected in the client: a renewal is the one script call with a key and
    two arguments (owner, TTL). Returns the list of moments the renewals were sent.
    """
    real: Callable[..., Awaitable[Any]] = client.evalsha
    sent: list[float] = []

    async def evalsha(sha: str, numkeys: int, *args: Any) -> Any:
        if numkeys == 1 and len(args) == 3:  # lock key, owner, TTL in ms: a renewal
            sent.append(time.monotonic())
            if len(sent) <= count:
                await asyncio.sleep(delay)
        return await real(sha, numkeys, *args)

    client.evalsha = evalsha  # type: ignore[method-assign]
    return sent


@pytest.mark.redis
async def test_one_slow_lease_renewal_does_not_let_a_second_owner_in(redis_url: str) -> None:
    async with aioredis.Redis.from_url(redis_url) as client:
        renewals = slow_renewals(client, delay=LEASE, count=1)  # times out after LEASE/3
        holder = RedisStore(client, lock_lease=LEASE)
        rival = RedisStore(
            redis_url, lock_lease=LEASE, lock_poll_initial=0.001, lock_poll_max=0.002
        )
        try:
            async with holder.lock("k", timeout=1) as held:
                assert held
                # The rival polls every 1-2 ms for 3 leases while the holder lives.
                async with rival.lock("k", timeout=3 * LEASE) as stolen:
                    assert not stolen, "a second owner took the lock while the holder lived"
                assert await client.get("tokenfleet:{k}:lock") is not None
        finally:
            await rival.aclose()
            await holder.aclose()
    # the slow one, retried at once, then every LEASE/3 from the last success
    assert len(renewals) >= 4


@pytest.mark.redis
async def test_a_lease_that_really_ran_out_is_logged(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with aioredis.Redis.from_url(redis_url) as client:
        slow_renewals(client, delay=10.0, count=1000)  # no renewal ever gets through
        holder = RedisStore(client, lock_lease=LEASE)
        rival = RedisStore(redis_url, lock_lease=LEASE)
        try:
            with caplog.at_level(logging.WARNING, logger="tokenfleet"):
                async with holder.lock("k", timeout=1) as held:
                    assert held
                    async with rival.lock("k", timeout=3 * LEASE) as taken:
                        assert taken  # the lease really lapsed: the rival may take over
            assert any("could not renew the fleet lock" in r.getMessage() for r in caplog.records)
        finally:
            await rival.aclose()
            await holder.aclose()
