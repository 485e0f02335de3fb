"""The refresh policy with a clock we move by hand (the one thing that cannot be real).

The source is a small real TokenSource that counts calls and can be told to fail; the
manager's own clock is injected, as Go's ``timeNow`` is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from tokenfleet import Refresh, ServerError, Token, TokenManager


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingSource:
    """Issues tokens of a fixed lifetime by the given clock; can be made to fail."""

    def __init__(self, clock: Clock, lifetime: float = 100.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None

    def cache_key(self, scopes: str | Iterable[str] | None = None) -> str:
        return f"test:{sorted(scopes or [])}"

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        now = self.clock()
        return Token(access_token=f"t{self.calls}", expires_at=now + self.lifetime, issued_at=now)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_hot_until_refresh_point_then_background_refresh(clock: Clock) -> None:
    source = CountingSource(clock)
    async with TokenManager(
        source, clock=clock, monotonic=clock, refresh=Refresh(jitter=0.0)
    ) as manager:
        first = await manager.get_token()
        clock.now += 79
        assert await manager.get_token() is first
        assert source.calls == 1
        clock.now += 2  # past 80 %: served at once, refresh started in the background
        source.gate = asyncio.Event()
        assert await manager.get_token() is first
        assert await manager.get_token() is first  # one refresh, not one per caller
        assert manager.stats.refreshes_ahead == 1
        source.gate.set()
        await settle()
        second = await manager.get_token()
        assert second.access_token == "t2"
        assert source.calls == 2


async def test_jitter_moves_refresh_earlier_within_bound(clock: Clock) -> None:
    points = set()
    for _ in range(20):
        source = CountingSource(clock)
        async with TokenManager(
            source, clock=clock, monotonic=clock, refresh=Refresh(jitter=0.05)
        ) as manager:
            await manager.get_token()
            entry = manager._near[manager.cache_key()]
            points.add(round(entry.refresh_at - clock.now, 3))
    assert all(75 <= p <= 80 for p in points)
    assert len(points) > 5  # really random per process


async def test_stale_if_error_with_backoff(clock: Clock) -> None:
    source = CountingSource(clock)
    async with TokenManager(
        source,
        clock=clock,
        monotonic=clock,
        refresh=Refresh(jitter=0.0),
        min_backoff=5,
        max_backoff=40,
    ) as manager:
        first = await manager.get_token()
        source.fail = ServerError("down", status=503)
        clock.now += 81
        assert await manager.get_token() is first  # starts a refresh that fails
        await settle()
        assert manager.stats.fetch_errors == 1
        for _ in range(100):  # during the backoff: no new fetch, still the old token
            assert await manager.get_token() is first
        assert source.calls == 2
        assert manager.stats.stale_served >= 100
        clock.now += 5  # backoff (4-5 s) over: one more attempt, in the background
        assert await manager.get_token() is first
        await settle()
        assert source.calls == 3
        # Token past usable (100 s - leeway 10 s): callers now get the error, promptly.
        clock.now = first.expires_at - 9
        with pytest.raises(ServerError):
            await manager.get_token()
        calls = source.calls
        for _ in range(100):
            with pytest.raises(ServerError):
                await manager.get_token()
        assert source.calls == calls  # in backoff: no request per caller


async def test_backoff_doubles_to_cap(clock: Clock) -> None:
    source = CountingSource(clock)
    source.fail = ServerError("down", status=503)
    async with TokenManager(
        source, clock=clock, monotonic=clock, min_backoff=1, max_backoff=4
    ) as manager:
        waits = []
        for _ in range(5):
            with pytest.raises(ServerError):
                await manager.get_token()
            failure = manager._backoff.get(manager.cache_key())
            assert failure is not None
            waits.append(failure.retry_at - clock.now)
            clock.now = failure.retry_at
        assert waits[0] <= 1 and waits[1] <= 2 and waits[2] <= 4
        assert 3.2 <= waits[4] <= 4
        assert source.calls == 5


async def test_recovery_clears_backoff(clock: Clock) -> None:
    source = CountingSource(clock)
    source.fail = ServerError("down", status=503)
    async with TokenManager(source, clock=clock, monotonic=clock, min_backoff=1) as manager:
        with pytest.raises(ServerError):
            await manager.get_token()
        source.fail = None
        clock.now += 1
        assert (await manager.get_token()).access_token == "t2"
        assert manager._backoff.get(manager.cache_key()) is None


async def test_short_lived_token_is_usable(clock: Clock) -> None:
    source = CountingSource(clock, lifetime=5)
    async with TokenManager(
        source, clock=clock, monotonic=clock, refresh=Refresh(jitter=0.0)
    ) as manager:
        first = await manager.get_token()
        clock.now += 4.4  # leeway shrank to 0.5 s: still usable
        assert await manager.get_token() is first
        clock.now += 0.2  # now past usable: the caller waits for a new one
        assert (await manager.get_token()).access_token == "t2"


async def test_wall_clock_jump_backwards_is_harmless(clock: Clock) -> None:
    source = CountingSource(clock)
    async with TokenManager(source, clock=clock, monotonic=clock) as manager:
        first = await manager.get_token()
        clock.now -= 3600  # NTP step backwards: the token only looks younger
        assert await manager.get_token() is first
        clock.now += 3600 + 95  # and forwards past expiry: refetched, never handed out
        assert (await manager.get_token()).access_token != first.access_token


async def test_inflight_table_stays_bounded(clock: Clock) -> None:
    source = CountingSource(clock)
    async with TokenManager(source, clock=clock, monotonic=clock) as manager:
        for i in range(200):
            await manager.get_token([f"s{i}"])
        assert len(manager._flights) == 0
        assert source.calls == 200


async def test_near_cache_is_bounded_by_max_keys(clock: Clock) -> None:
    from tokenfleet import ConfigurationError

    source = CountingSource(clock)
    async with TokenManager(source, clock=clock, monotonic=clock, max_keys=2) as manager:
        for scopes in (["a"], ["b"], ["c"]):
            await manager.get_token(scopes)
        assert len(manager._near) == 2
        assert manager.cache_key(["a"]) not in manager._near  # the oldest went
        await manager.get_token(["a"])  # back from the store, not from the source
        assert source.calls == 3
    with pytest.raises(ConfigurationError, match="max_keys"):
        TokenManager(source, max_keys=0)
