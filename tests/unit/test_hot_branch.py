"""get_token's hot branch (no clock read): it stops at the refresh point, counts its hits,
and an invalidation ends it at once. Real clock, real loop timers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from tokenfleet import Refresh, Token, TokenManager


class Source:
    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls = 0

    def cache_key(self, scopes: str | Iterable[str] | None = None) -> str:
        return f"hot:{sorted(scopes or [])}"

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        self.calls += 1
        now = time.time()
        return Token(access_token=f"t{self.calls}", expires_at=now + self.lifetime, issued_at=now)


async def test_the_hot_branch_ends_at_the_refresh_point() -> None:
    source = Source(lifetime=2.0)
    refresh = Refresh(leeway=0.0, ratio=0.5, jitter=0.0)  # refresh point 1 s after issue
    async with TokenManager(source, refresh=refresh, telemetry=False) as tokens:
        first = await tokens.get_token()
        calls = 1
        started = time.monotonic()
        while time.monotonic() - started < 0.8:  # before the refresh point: hot
            assert await tokens.get_token() is first
            calls += 1
            await asyncio.sleep(0.005)
        assert tokens._hot is first
        assert source.calls == 1
        await asyncio.sleep(0.35)  # past the refresh point: the timer has ended it
        assert tokens._hot is None
        assert await tokens.get_token() is first  # still usable; starts the refresh
        calls += 1
        for _ in range(20):
            await asyncio.sleep(0.01)
            token = await tokens.get_token()
            calls += 1
        assert token.access_token == "t2"
        assert source.calls == 2
        assert tokens.stats.hits + tokens.stats.misses == calls
        assert tokens.stats.hits >= calls - 2


async def test_invalidation_ends_the_hot_branch_at_once() -> None:
    source = Source(lifetime=3600.0)
    async with TokenManager(source, telemetry=False) as tokens:
        first = await tokens.get_token()
        assert await tokens.get_token() is first
        assert tokens._hot is first
        await tokens.invalidate(first)
        second = await tokens.get_token()
        assert second.access_token == "t2"
        await tokens.invalidate()
        assert (await tokens.get_token()).access_token == "t3"


async def test_an_injected_clock_keeps_no_hot_token() -> None:
    now = [time.time()]
    source = Source(lifetime=100.0)
    async with TokenManager(source, clock=lambda: now[0], telemetry=False) as tokens:
        first = await tokens.get_token()
        assert await tokens.get_token() is first
        assert tokens._hot is None  # every call reads the injected clock
        now[0] += 81
        assert await tokens.get_token() is first
        await asyncio.sleep(0.05)
        assert (await tokens.get_token()).access_token == "t2"
