"""Manager defects found by review, each named by its class (not by where it was found).

The stores are real (``MemoryStore``, ``FileStore`` on a real directory); a clock is
injected only where time must move by hand, and a store fault is injected only where a
store must fail on demand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tokenfleet import (
    ConfigurationError,
    FileStore,
    FleetCooldown,
    MemoryStore,
    StoreError,
    Token,
    TokenManager,
    TransportError,
)


class Clock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


class Source:
    """A real TokenSource that counts calls, can fail, and stamps tokens by a clock."""

    def __init__(self, clock: Any = time.time, lifetime: float = 100.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.fail: Exception | None = None

    def cache_key(self, scopes: str | Iterable[str] | None = None) -> str:
        return f"test:{sorted(scopes or [])}"

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        now = self.clock()
        return Token(access_token=f"t{self.calls}", expires_at=now + self.lifetime, issued_at=now)


class FlakyStore(MemoryStore):
    """A real MemoryStore with an injected outage switch (the fault we cannot make real)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.gets = 0

    def _check(self) -> None:
        if self.down:
            raise StoreError("injected outage")

    async def get(self, key: str) -> Token | None:
        self.gets += 1
        self._check()
        return await super().get(key)

    async def set(self, key: str, token: Token, ttl: float) -> None:
        self._check()
        await super().set(key, token, ttl)


def manager(source: Any, **kwargs: Any) -> TokenManager:
    kwargs.setdefault("telemetry", False)
    return TokenManager(source, **kwargs)


# ------------------------------------------------------------------ backoff and the store


async def test_backoff_hands_out_a_token_another_process_put_in_the_store(
    tmp_path: Path,
) -> None:
    """While a key is in backoff, a fresh token in the shared store beats the last error."""
    failing = Source()
    failing.fail = TransportError("connection refused")
    good = Source()
    async with (
        manager(failing, store=FileStore(tmp_path), min_backoff=30, max_backoff=60) as a,
        manager(good, store=FileStore(tmp_path)) as b,
    ):
        with pytest.raises(TransportError):
            await a.get_token()
        fresh = await b.get_token()  # another process fetched and stored a token
        assert (await a.get_token()).access_token == fresh.access_token
        assert failing.calls == 1  # a store read, not a fetch


async def test_each_caller_in_backoff_gets_its_own_exception() -> None:
    source = Source()
    source.fail = TransportError("connection refused")
    async with manager(source, min_backoff=30, max_backoff=60) as tokens:
        errors = []
        for _ in range(3):
            try:
                await tokens.get_token()
            except TransportError as exc:
                errors.append(exc)
        assert len({id(e) for e in errors}) == 3
        assert all(type(e) is TransportError and str(e) == str(errors[0]) for e in errors)
        try:
            raise ValueError("unrelated")
        except ValueError:
            try:
                await tokens.get_token()
            except TransportError as exc:
                inside = exc
        assert isinstance(inside.__context__, ValueError)
        assert errors[1].__context__ is None  # not rewritten by a later raise


async def test_backoff_delays_use_the_monotonic_clock() -> None:
    """A wall-clock step back must not stretch a backoff by the size of the step."""
    clock = Clock()
    source = Source(clock)
    source.fail = TransportError("connection refused")
    async with manager(source, clock=clock, min_backoff=0.2, max_backoff=0.2) as tokens:
        with pytest.raises(TransportError):
            await tokens.get_token()
        clock.now -= 3600  # NTP steps the wall clock back an hour
        source.fail = None
        await asyncio.sleep(0.3)  # the backoff (0.2 s) is over in real time
        assert (await tokens.get_token()).access_token == "t2"


# ------------------------------------------------------------------ store outage


async def test_store_outage_with_a_usable_token_is_not_a_herd() -> None:
    """A member holding a usable token keeps serving it while the store is down, and
    fetches by itself only when its token is about to stop being usable."""
    clock = Clock()
    source = Source(clock, lifetime=100.0)
    store = FlakyStore()
    async with manager(source, store=store, clock=clock) as tokens:
        first = await tokens.get_token()
        store.down = True
        clock.now += 85  # past the refresh point (80 s), usable until 90 s
        for _ in range(20):
            assert await tokens.get_token() is first
            await asyncio.sleep(0.01)
        assert source.calls == 1, "fetched on its own while its token was still usable"
        clock.now += 4.9  # 0.1 s of usability left: now it must fetch by itself
        token = await tokens.get_token()
        for _ in range(5):
            await asyncio.sleep(0.01)
            token = await tokens.get_token()
        assert token.access_token == "t2"
        assert source.calls == 2


# ------------------------------------------------------------------ invalidation


async def test_invalidate_without_a_token_keeps_another_process_newer_token(
    tmp_path: Path,
) -> None:
    source = Source()
    async with (
        manager(source, store=FileStore(tmp_path)) as a,
        manager(Source(), store=FileStore(tmp_path)) as b,
    ):
        newer = await a.get_token()  # in A's near cache and in the store
        await b.invalidate()  # B holds nothing: nothing of A's may go
        await asyncio.sleep(0.6)  # longer than the file store's invalidation poll
        assert (await a.get_token()) is newer
        assert (await a.store.get(a.cache_key())) is not None
        assert source.calls == 1


async def test_refetches_caused_by_invalidations_are_rate_limited_per_key() -> None:
    """A resource server that rejects every token must not cost a token request each."""
    source = Source()
    async with manager(source, min_backoff=0.5, max_backoff=1.0) as tokens:
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            token = await tokens.get_token()
            await tokens.invalidate(token)
        # one refetch per min_backoff per key (docs/concepts.md): about 1 + 1.0 / 0.5
        assert source.calls <= 4, f"{source.calls} token requests for one second of 401s"


# ------------------------------------------------------------------ what a store says


async def test_cooldown_read_from_a_store_is_clamped_to_max_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = Source()
    store = FileStore(tmp_path)
    async with manager(source, store=store, min_backoff=0.2, max_backoff=0.5) as tokens:
        key = tokens.cache_key()
        evil = "planted\r\nFAKE LOG LINE " + "x" * 5000
        await store.set_cooldown(key, time.time() + 10 * 365 * 86400, evil)
        caplog.set_level(logging.DEBUG, logger="tokenfleet")
        with pytest.raises(FleetCooldown) as caught:
            await tokens.get_token()
        assert caught.value.until <= time.time() + 0.5 + 0.1
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 500
        for record in caplog.records:
            text = record.getMessage()
            assert "\r" not in text and "\n" not in text and len(text) < 1000
        await store.set_cooldown(key, 0.0, "")  # the entry is gone
        await asyncio.sleep(0.6)
        assert (await tokens.get_token()).access_token == "t1"


@pytest.mark.parametrize(
    "access_token", ["bad\r\nInjected: header", "x" * (1024 * 1024 + 1), "caf\u00e9"]
)
async def test_a_token_read_from_a_store_gets_the_checks_of_a_fresh_one(
    access_token: str,
) -> None:
    store = MemoryStore()
    source = Source()
    async with manager(source, store=store) as tokens:
        now = time.time()
        planted = Token(access_token=access_token, expires_at=now + 100, issued_at=now)
        await store.set(tokens.cache_key(), planted, 100)
        token = await tokens.get_token()
        assert token.access_token == "t1"
        assert source.calls == 1


# ------------------------------------------------------------------ caller input


async def test_min_ttl_no_token_can_satisfy_fails_fast() -> None:
    source = Source(lifetime=60.0)  # usable for 54 s
    async with manager(source) as tokens:
        for _ in range(50):
            with pytest.raises(ConfigurationError, match="min_ttl"):
                await tokens.get_token(min_ttl=300)
        assert source.calls <= 1


@pytest.mark.parametrize("min_ttl", [float("inf"), float("nan"), -1.0, None, "60"])
async def test_a_bad_min_ttl_is_a_configuration_error(min_ttl: Any) -> None:
    # inf raised a bare KeyError (the too-short table's default compared equal), None
    # and "60" a TypeError; nan asked the server for a token no check could accept.
    source = Source()
    async with manager(source) as tokens:
        with pytest.raises(ConfigurationError, match="min_ttl"):
            await tokens.get_token(min_ttl=min_ttl)
        assert source.calls == 0


@pytest.mark.parametrize("scopes", [123, [["a"]], [1, 2], b"scope", 1.5])
async def test_bad_scopes_are_a_configuration_error(scopes: Any) -> None:
    async with manager(Source()) as tokens:
        with pytest.raises(ConfigurationError, match="scopes"):
            await tokens.get_token(scopes)
        with pytest.raises(ConfigurationError, match="scopes"):
            tokens.cache_key(scopes)


async def test_a_store_hit_is_counted_as_a_store_hit_not_a_miss(tmp_path: Path) -> None:
    async with (
        manager(Source(), store=FileStore(tmp_path)) as a,
        manager(Source(), store=FileStore(tmp_path)) as b,
    ):
        await a.get_token()
        await b.get_token()
        assert b.stats.store_hits == 1
        assert b.stats.fetches == 0
        assert a.stats.store_hits == 0 and a.stats.fetches == 1
