"""One contract suite for every store (memory, file, a real redis-server), plus each
shared store's own promises: permissions, redaction, failures, cooldowns, invalidations."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from helpers import make_token, write_raw
from redis_server import RedisServer
from tokenfleet import ConfigurationError, StoreError
from tokenfleet.stores import (
    FileStore,
    FleetStore,
    MemoryStore,
    RedisStore,
    TokenStore,
    _codec,
    store_from_url,
)

STORES = ["memory", "file", pytest.param("redis", marks=pytest.mark.redis)]
SHARED = ["file", pytest.param("redis", marks=pytest.mark.redis)]


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    if kind == "memory":
        return MemoryStore()
    if kind == "file":
        return FileStore(tmp_path / "store")
    return RedisStore(request.getfixturevalue("redis_url"))


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TokenStore]:
    opened = open_store(request.param, request, tmp_path)
    yield opened
    await opened.aclose()


@pytest.fixture(params=SHARED)
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FleetStore]:
    opened = open_store(request.param, request, tmp_path)
    assert isinstance(opened, FleetStore)
    yield opened
    await opened.aclose()


async def second_instance(store: FleetStore) -> FleetStore:
    """Another store on the same backend, as another process would open it."""
    if isinstance(store, FileStore):
        return FileStore(store.path)
    assert isinstance(store, RedisStore)
    return RedisStore(store._where)  # the test URL has no password to redact


# ---------------------------------------------------------------------- the contract


async def test_get_set_delete(store: TokenStore) -> None:
    token = make_token()
    assert await store.get("k") is None
    await store.set("k", token, 60)
    assert await store.get("k") == token
    assert await store.get("other") is None
    assert await store.delete("k") is True
    assert await store.get("k") is None
    assert await store.delete("k") is False


async def test_keys_may_contain_anything(store: TokenStore) -> None:
    key, token = "client/../\x00 {slot} ☃:" + "x" * 500, make_token()
    await store.set(key, token, 60)
    assert await store.get(key) == token


async def test_compare_and_delete_keeps_a_newer_token(store: TokenStore) -> None:
    old, new = make_token("old"), make_token("new")
    await store.set("k", new, 60)
    assert await store.delete("k", old) is False
    assert await store.get("k") == new
    assert await store.delete("k", new) is True
    assert await store.get("k") is None


async def test_entries_expire_after_their_ttl(store: TokenStore) -> None:
    await store.set("k", make_token(), 0.3)
    assert await store.get("k") is not None
    await asyncio.sleep(0.5)
    assert await store.get("k") is None
    await store.set("k", make_token(), 0)  # a ttl <= 0 stores nothing
    assert await store.get("k") is None


async def test_the_lock_is_exclusive(store: TokenStore) -> None:
    inside, most = 0, 0

    async def worker() -> None:
        nonlocal inside, most
        async with store.lock("k", timeout=20) as acquired:
            assert acquired
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    async with asyncio.timeout(30):
        await asyncio.gather(*(worker() for _ in range(50)))
    assert most == 1


async def test_a_lock_wait_is_bounded_by_its_timeout(store: TokenStore) -> None:
    async with store.lock("k", timeout=1) as held:
        assert held
        started = time.monotonic()
        async with store.lock("k", timeout=0.2) as second:
            assert second is False
        assert 0.15 < time.monotonic() - started < 1.0
    async with store.lock("k", timeout=1) as again:  # released on exit
        assert again


async def test_a_waiter_learns_quickly_that_the_lock_is_free(store: TokenStore) -> None:
    async def hold() -> None:
        async with store.lock("k", timeout=1):
            await asyncio.sleep(0.3)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    async with store.lock("k", timeout=5) as acquired:
        waited = time.monotonic() - started
    await holder
    assert acquired
    assert waited < 0.25 + 0.1  # the holder's remaining time, plus one poll at most


# ---------------------------------------------------------------------- shared stores


def clear_entry(**members: object) -> bytes:
    """A clear version-1 envelope whose token has ``members`` set to anything at all."""
    token = make_token()
    body = {f: getattr(token, f) for f in token.__struct_fields__} | members
    return msgspec.msgpack.encode(
        [1, token.fingerprint, time.time() + 60, msgspec.msgpack.encode(body)]
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xc1garbage", id="garbage"),
        pytest.param(_codec.encode(make_token(), time.time() + 60)[:-7], id="truncated"),
        pytest.param(msgspec.msgpack.encode([2, "abc", 1e12, b"x"]), id="other-version"),
        pytest.param(msgspec.msgpack.encode([1, "abc", "soon", 5]), id="wrong-types"),
        pytest.param(b"", id="empty"),
        pytest.param(clear_entry(dpop_key=-32), id="dpop-key-not-a-pair"),
    ],
)
async def test_an_unreadable_entry_is_a_miss_and_one_warning(
    shared: FleetStore, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    await write_raw(shared, "k", raw)
    with caplog.at_level(logging.WARNING, logger="tokenfleet"):
        assert await shared.get("k") is None
        assert await shared.get("k") is None
    warnings = [r for r in caplog.records if r.name == "tokenfleet"]
    assert len(warnings) == 1  # rate-limited per store
    assert "unreadable entry" in warnings[0].getMessage()
    assert repr(raw) not in warnings[0].getMessage()
    await shared.set("k", make_token(), 60)  # and the key works again
    assert await shared.get("k") is not None


async def test_the_envelope_starts_with_the_token_fingerprint() -> None:
    token = make_token()
    data = _codec.encode(token, time.time() + 1)
    assert data.startswith(_codec.header(token.fingerprint))
    assert not data.startswith(_codec.header(make_token("other").fingerprint))
    assert _codec.decode(data) == token


async def test_cooldowns_expire_by_themselves(shared: FleetStore) -> None:
    assert await shared.get_cooldown("k") is None
    until = time.time() + 0.4
    await shared.set_cooldown("k", until, "HTTP 429 from the token endpoint")
    cooldown = await shared.get_cooldown("k")
    assert cooldown is not None
    assert cooldown[0] == pytest.approx(until)
    assert cooldown[1] == "HTTP 429 from the token endpoint"
    assert await shared.get_cooldown("other") is None
    await asyncio.sleep(0.6)
    assert await shared.get_cooldown("k") is None
    await shared.set_cooldown("k", time.time() - 1, "already over")
    assert await shared.get_cooldown("k") is None


async def test_invalidations_reach_another_instance_within_a_second(
    shared: FleetStore,
) -> None:
    other = await second_instance(shared)
    events = other.invalidations()
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.3)  # let it subscribe (Redis) or take its first listing (file)
    token = make_token()
    await shared.set("k", token, 60)
    started = time.monotonic()
    await shared.delete("k", token)
    async with asyncio.timeout(1.0):
        assert await first == ("k", token.fingerprint)
    assert time.monotonic() - started < 1.0
    await shared.delete("k2")
    async with asyncio.timeout(1.0):
        assert await anext(events) == ("k2", "*")
    await other.aclose()
    async with asyncio.timeout(2.0):  # a closed store ends its iterators
        with pytest.raises(StopAsyncIteration):
            await anext(events)


# ---------------------------------------------------------------------- store_from_url


async def test_store_from_url_knows_every_scheme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert isinstance(store_from_url("memory://"), MemoryStore)
    cases = {
        f"file://{tmp_path}/abs": tmp_path / "abs",
        "file://~/tokens": tmp_path / "home" / "tokens",
        "file://": tmp_path / "xdg" / "tokenfleet",
    }
    for url, path in cases.items():
        store = store_from_url(url)
        assert isinstance(store, FileStore)
        assert store.path == path
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for url in ("redis://127.0.0.1:1/0", "rediss://h:6380/1", "unix:///tmp/r.sock?db=2"):
        store = store_from_url(url)
        assert isinstance(store, RedisStore)
        await store.aclose()
    with pytest.raises(ConfigurationError) as error:
        store_from_url("memcached://localhost")
    for scheme in ("file://", "memory://", "redis://", "rediss://", "unix://"):
        assert scheme in str(error.value)
    with pytest.raises(ConfigurationError, match="absolute"):
        store_from_url("file://somehost/path")


@pytest.mark.redis
async def test_a_redis_url_with_options_is_used(redis_url: str) -> None:
    store = store_from_url(redis_url.replace("/0", "/1") + "?socket_timeout=1")
    token = make_token()
    try:
        await store.set("k", token, 60)
        assert await store.get("k") == token
    finally:
        await store.aclose()
    async with aioredis.Redis.from_url(redis_url.replace("/0", "/1")) as client:
        assert await client.exists("tokenfleet:{k}") == 1


# ---------------------------------------------------------------------- FileStore


async def test_file_store_permissions(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "d")
    await store.set("k", make_token(), 60)
    async with store.lock("k", 1):
        pass
    await store.set_cooldown("k", time.time() + 5, "x")
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700
    for path in (tmp_path / "d").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


async def test_file_store_refuses_a_directory_others_can_write(tmp_path: Path) -> None:
    shared_dir = tmp_path / "open"
    shared_dir.mkdir()
    shared_dir.chmod(0o777)
    with pytest.raises(ConfigurationError, match="writable by group or others"):
        FileStore(shared_dir)
    shared_dir.chmod(0o775)
    with pytest.raises(ConfigurationError, match="chmod 700"):
        FileStore(shared_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory away")
async def test_file_store_refuses_a_directory_of_another_user(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    with pytest.raises(ConfigurationError, match="owned by uid 12345"):
        FileStore(theirs)


async def test_a_failed_file_write_is_a_store_error_and_leaves_nothing(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "d")
    store._file("k", ".tok").mkdir()  # os.replace onto a directory fails
    with pytest.raises(StoreError, match="cannot write"):
        await store.set("k", make_token(), 60)
    assert [p.name for p in (tmp_path / "d").iterdir()] == [store._file("k", ".tok").name]


# ---------------------------------------------------------------------- RedisStore


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret-pw@127.0.0.1:1/0",
        "redis://alice:s3cret-pw@127.0.0.1:1/0",
        "redis://127.0.0.1:1/0?password=s3cret-pw",
    ],
)
async def test_redis_passwords_never_show(url: str) -> None:
    store = RedisStore(url, op_timeout=2)
    try:
        assert "s3cret-pw" not in repr(store)
        assert "***" in repr(store)
        with pytest.raises(StoreError) as error:  # nothing listens on port 1
            await store.get("k")
        assert "s3cret-pw" not in str(error.value)
        assert "127.0.0.1" in str(error.value)
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_redis_store_errors_when_redis_is_down(
    redis_server: RedisServer, redis_url: str
) -> None:
    store = RedisStore(redis_url)
    try:
        await store.set("k", make_token(), 60)
        redis_server.stop()
        for call in (store.get("k"), store.set("k", make_token(), 60), store.delete("k")):
            started = time.monotonic()
            with pytest.raises(StoreError, match="Redis store"):
                await call
            assert time.monotonic() - started < 3.0  # fails fast
        with pytest.raises(StoreError):
            async with store.lock("k", timeout=5):
                pass
        redis_server.start()
        assert await store.get("k") is None  # the same client reconnects (Redis came back empty)
    finally:
        redis_server.start()
        await store.aclose()


@pytest.mark.redis
async def test_redis_out_of_memory_is_a_store_error(redis_url: str) -> None:
    async with aioredis.Redis.from_url(redis_url) as admin:
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")
        store = RedisStore(redis_url)
        try:
            with pytest.raises(StoreError, match=r"OOM|maxmemory"):
                await store.set("k", make_token(), 60)
        finally:
            await admin.config_set("maxmemory", "0")
            await store.aclose()


@pytest.mark.redis
async def test_redis_layout_ttl_and_a_client_passed_in(redis_url: str) -> None:
    async with aioredis.Redis.from_url(redis_url) as client:
        store = RedisStore(client, prefix="app")
        await store.set("k", make_token(), 30)
        assert 29_000 < await client.pttl("app:{k}") <= 30_000
        async with store.lock("k", timeout=4) as held:
            assert held
            assert 1_000 < await client.pttl("app:{k}:lock") <= 2_000  # the 2 s lease
            await asyncio.sleep(2.5)  # longer than the lease: the holder renews it
            assert await client.get("app:{k}:lock") is not None
            assert 0 < await client.pttl("app:{k}:lock") <= 2_000
        assert await client.exists("app:{k}:lock") == 0
        assert "s3cret" not in repr(store)
        await store.aclose()
        assert await client.ping()  # not closed: we did not create it


@pytest.mark.redis
async def test_redis_invalidations_survive_an_outage(
    redis_server: RedisServer, redis_url: str
) -> None:
    listener, publisher = RedisStore(redis_url), RedisStore(redis_url)
    events = listener.invalidations()
    try:
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)
        redis_server.restart()  # the subscription's connection is gone
        async with asyncio.timeout(10):  # messages sent while it reconnects are lost: resend
            while not first.done():
                await publisher.delete("k")
                await asyncio.wait([first], timeout=0.2)
        assert first.result() == ("k", "*")
    finally:
        redis_server.start()
        await listener.aclose()
        await publisher.aclose()
        await events.aclose()
