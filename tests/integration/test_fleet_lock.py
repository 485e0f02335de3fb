"""The fleet lock of the shared stores under faults: slow lease renewals, waiters that
must see the token land, a lock held past ``lock_timeout``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import redis.asyncio as aioredis

from helpers import manager_for
from tokenfleet import ClientCredentials, Token, TokenManager
from tokenfleet.stores import MemoryStore, RedisStore, _redis_lock
from tokenfleet.stores._redis_lock import EXTEND
from tokenfleet.testing import DevAuthServer

LEASE = 0.6


def make_token(access: str = "access-1", lifetime: float = 60.0) -> Token:
    now = time.time()
    return Token(access_token=access, expires_at=now + lifetime, issued_at=now)


def slow_renewals(client: aioredis.Redis, delay: float, count: int) -> list[float]:
    """Delay the first ``count`` lease renewals sent through ``client`` by ``delay`` s.

    The fault is injected in the client: a renewal is a call of the lease-extending
    script. Returns the list of moments the renewals were sent.
    """
    real: Callable[..., Awaitable[Any]] = client.evalsha
    sent: list[float] = []
    renewal = hashlib.sha1(EXTEND.encode()).hexdigest()  # noqa: S324 - Redis names scripts so

    async def evalsha(sha: str, numkeys: int, *args: Any) -> Any:
        if sha == renewal:
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


class PlainStore:
    """A third-party store: the protocol's five methods, no ``lock_or_token``."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    async def get(self, key: str) -> Token | None:
        return await self.inner.get(key)

    async def set(self, key: str, token: Token, ttl: float) -> None:
        await self.inner.set(key, token, ttl)

    async def delete(self, key: str, token: Token | None = None) -> bool:
        return await self.inner.delete(key, token)

    def lock(self, key: str, timeout: float) -> AbstractAsyncContextManager[bool]:
        return self.inner.lock(key, timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_after_lock_timeout_the_store_is_read_again_before_fetching() -> None:
    """The lock holder's token lands while we wait; its lock outlives our lock_timeout."""
    async with DevAuthServer() as idp:
        store = PlainStore()
        client = ClientCredentials(
            idp.token_url, client_id=idp.client_id, client_secret=idp.client_secret
        )
        async with TokenManager(client, store=store, lock_timeout=0.5, close_store=False) as tm:
            key = tm.cache_key()
            holding, release = asyncio.Event(), asyncio.Event()

            async def slow_holder() -> None:
                async with store.lock(key, timeout=1) as held:
                    assert held
                    holding.set()
                    await asyncio.sleep(0.2)
                    await store.set(key, make_token("from-the-holder"), 60)
                    await release.wait()  # still holding after our lock_timeout

            holder = asyncio.create_task(slow_holder())
            await holding.wait()
            token = await tm.get_token()
            release.set()
            await holder
        assert token.access_token == "from-the-holder"
        assert idp.token_requests() == 0
        assert tm.stats.lock_timeouts == 1


@pytest.mark.redis
async def test_waiters_are_served_by_the_release_message_without_a_get(
    redis_url: str, idp_factory: Callable[..., Awaitable[DevAuthServer]]
) -> None:
    """The lock release carries the stored token: a woken waiter is served by the message
    it already received, not by one more ``GET`` each (at 1,000 members that ``GET`` made
    the wake-up cost twice a plain store read)."""
    members = 40
    idp = await idp_factory(latency=0.3)
    admin = aioredis.Redis.from_url(redis_url)
    managers = [manager_for(idp, RedisStore(redis_url)) for _ in range(members)]
    try:
        await asyncio.gather(*(m.get_token("warmup") for m in managers))
        stores = [m.store for m in managers]
        for _ in range(200):  # every member's pub/sub connection is up (10 s at most)
            if all(s._waiters.subscribed for s in stores):  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the members' pub/sub connections did not come up")
        await admin.config_resetstat()
        before = idp.token_requests()
        tokens = await asyncio.gather(*(m.get_token("cold") for m in managers))
        stats = await admin.info("commandstats")
    finally:
        await asyncio.gather(*(m.aclose() for m in managers))
        await admin.aclose()
    assert idp.token_requests() - before == 1
    assert len({t.access_token for t in tokens}) == 1
    gets = int(stats["cmdstat_get"]["calls"])
    # One GET per member (its first look at the store) and the holder's re-read under
    # the lock; a member that starts after the release takes the free lock and reads.
    # Woken waiters add none (before: one each, so about 2 x members).
    assert gets <= members + members // 8, gets


@pytest.mark.redis
async def test_a_release_message_is_what_the_release_script_publishes(redis_url: str) -> None:
    """The message built in Lua decodes to ``(key, stored token)``; with no token stored,
    or from a version that sent the key alone, to ``(key, None)``; garbage to nothing."""
    store = RedisStore(redis_url)
    listener = aioredis.Redis.from_url(redis_url).pubsub()
    try:
        await listener.subscribe(store.released_channel)
        token = make_token("carried")
        await store.set("with", token, 60)
        stored = await store._client.get(store._key("with"))
        for key in ("with", "without"):
            async with store.lock(key, timeout=1) as held:
                assert held
        await store._client.publish(store.released_channel, b"\x92\xc0\xc0")  # [nil, nil]
        seen = []
        async with asyncio.timeout(5):
            while len(seen) < 3:
                message = await listener.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    seen.append(_redis_lock.released(message, store.released_channel))
        assert seen == [("with", stored), ("without", None), None]
        old_style = {"type": "message", "channel": store.released_channel, "data": b"\xa3old"}
        assert _redis_lock.released(old_style, store.released_channel) == ("old", None)
        assert store._codec.decode(seen[0][1], "with").access_token == "carried"
    finally:
        await listener.aclose()
        await store.aclose()
