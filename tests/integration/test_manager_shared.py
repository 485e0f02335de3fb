"""TokenManager on shared stores: fleet-wide cooldown, fail-open and fail-closed.

Two managers on one shared store stand for two processes here (each has its own near
cache and flights; all they share is the store). The multi-process fleet tests are in
test_fleet.py.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import helpers
from redis_server import free_port
from tokenfleet import (
    FileStore,
    FleetCooldown,
    InvalidClient,
    RateLimited,
    RedisStore,
    Refresh,
    Retry,
    StoreError,
)
from tokenfleet.testing import DevAuthServer, Fault


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "file":
        return lambda: FileStore(tmp_path / "tokens")
    url = request.getfixturevalue("redis_url")
    return lambda: RedisStore(url)


# one request per fetch: the cooldown and request counts below follow from it
manager_for = partial(helpers.manager_for, client={"retry": Retry(attempts=1)})
NO_JITTER = Refresh(jitter=0)


def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there any more


@pytest.mark.parametrize(
    ("fault", "first_error"),
    [
        (Fault(status=429, retry_after=2), RateLimited),
        (Fault(status=401, body='{"error": "invalid_client"}'), InvalidClient),
        (Fault(status=503), Exception),
    ],
)
async def test_one_process_failure_makes_the_fleet_back_off(
    idp: DevAuthServer, store_factory: Any, fault: Fault, first_error: type[Exception]
) -> None:
    idp.inject_fault(fault)
    async with (
        manager_for(idp, store_factory(), min_backoff=1.5, max_backoff=2) as a,
        manager_for(idp, store_factory(), min_backoff=1.5, max_backoff=2) as b,
    ):
        with pytest.raises(first_error):
            await a.get_token()
        assert idp.token_requests() == 1
        results = await asyncio.gather(
            *(b.get_token() for _ in range(100)), return_exceptions=True
        )
        assert all(isinstance(r, FleetCooldown) for r in results), results[0]
        cooldown = results[0]
        assert isinstance(cooldown, FleetCooldown)
        assert cooldown.until > 0
        assert "HTTP" in cooldown.reason
        assert idp.token_requests() == 1  # the second process did not ask at all
        idp.clear_faults()
        await asyncio.sleep(2.1)  # the cooldown (1.2-2 s) is over: back to normal
        token = await b.get_token()
        assert token.access_token
        assert idp.token_requests() == 2


async def test_cooldown_keeps_serving_a_usable_token(
    idp: DevAuthServer, store_factory: Any
) -> None:
    idp.token_lifetime = 6.0
    async with (
        manager_for(idp, store_factory(), min_backoff=5, max_backoff=5, refresh=NO_JITTER) as a,
        manager_for(idp, store_factory(), min_backoff=5, max_backoff=5, refresh=NO_JITTER) as b,
    ):
        token = await a.get_token()
        assert await b.get_token() is not None
        idp.inject_fault(Fault(status=429, retry_after=5))
        # past the refresh point (4.8 s), usable until 5.4 s: slack for a busy machine
        await asyncio.sleep(4.9)
        assert (await a.get_token()).access_token == token.access_token  # refresh fails
        await asyncio.sleep(0.1)
        assert (await b.get_token()).access_token == token.access_token  # cooldown seen
        await asyncio.sleep(0.1)
        assert idp.token_requests() == 2  # a's initial fetch and a's one refresh attempt
        assert b.stats.fetch_errors == 1  # b's flight ended with FleetCooldown, no request


async def test_redis_unreachable_fails_open_and_warns_once(
    idp: DevAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with manager_for(idp, RedisStore(dead_redis_url()), lock_timeout=1) as manager:
        with caplog.at_level(logging.WARNING, logger="tokenfleet"):
            tokens = await asyncio.gather(*(manager.get_token() for _ in range(200)))
            for scopes in (["a"], ["b"], ["c"]):
                await manager.get_token(scopes)
        assert len({t.access_token for t in tokens}) == 1  # in-process single flight holds
        assert idp.token_requests() == 4
        assert manager.stats.store_errors >= 4
        warnings = [r for r in caplog.records if "store failing" in r.getMessage()]
        assert len(warnings) == 1


async def test_redis_unreachable_fail_closed_raises_store_error(idp: DevAuthServer) -> None:
    async with manager_for(idp, RedisStore(dead_redis_url()), fail_open=False) as manager:
        with pytest.raises(StoreError, match=r"(?i)redis"):
            await manager.get_token()
    assert idp.token_requests() == 0


@pytest.mark.redis
async def test_redis_client_decoding_responses_is_refused(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from tokenfleet import ConfigurationError

    async with aioredis.Redis.from_url(redis_url, decode_responses=True) as client:
        with pytest.raises(ConfigurationError, match="decode_responses"):
            RedisStore(client)
