"""Deeply nested msgpack in a shared store is an unreadable entry, not a RecursionError.

msgspec recurses once per array level, including when it skips a field it does not know
(a trailing array element, an unknown map key): ``[1, fp, until, body, [[[…50,000…]]]]``
(50 KB) raised ``RecursionError`` out of ``get``. Anyone who can write to the store can
plant it, so it must read as garbage does: a miss and the store's rate-limited warning
(token entries), no cooldown, a skipped invalidation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from helpers import make_token, write_raw
from tokenfleet.stores import FileStore, FleetStore, RedisStore

DEPTH = 50_000


def deep(depth: int = DEPTH) -> bytes:
    """msgpack of ``[[[…None…]]]``, ``depth`` levels (one byte per level)."""
    return b"\x91" * depth + b"\xc0"


def with_deep_tail(value: tuple[object, ...]) -> bytes:
    """msgpack of ``[*value, [[[…]]]]``: the known fields first, then deep nesting."""
    return bytes([0x90 + len(value) + 1]) + b"".join(map(msgspec.msgpack.encode, value)) + deep()


def nested_envelope_tail() -> bytes:
    token = make_token()
    return with_deep_tail((1, token.fingerprint, time.time() + 60, msgspec.msgpack.encode(token)))


def nested_token_body() -> bytes:
    """A clear version-1 envelope whose token has an unknown member nested deeply."""
    token = make_token()
    fields = {f: getattr(token, f) for f in token.__struct_fields__} | {"zz": None}
    body = msgspec.msgpack.encode(fields)
    assert body.endswith(b"\xc0")  # the value of "zz", last: replaced by the nesting
    body = body[:-1] + deep()
    return msgspec.msgpack.encode([1, token.fingerprint, time.time() + 60, body])


def nested_extra() -> bytes:
    """A token whose ``extra`` (any JSON the server sent) is nested deeply."""
    token = make_token()
    fields = {f: getattr(token, f) for f in token.__struct_fields__ if f != "extra"}
    body = msgspec.msgpack.encode(fields | {"extra": {"a": None}})
    body = body[:-1] + deep()
    return msgspec.msgpack.encode([1, token.fingerprint, time.time() + 60, body])


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FleetStore]:
    if request.param == "file":
        opened: FleetStore = FileStore(tmp_path / "store")
    else:
        opened = RedisStore(request.getfixturevalue("redis_url"))
    yield opened
    await opened.aclose()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(nested_envelope_tail, id="envelope-tail"),
        pytest.param(nested_token_body, id="token-body"),
        pytest.param(nested_extra, id="token-extra"),
        pytest.param(deep, id="bare"),
    ],
)
async def test_a_deeply_nested_entry_is_a_miss_and_one_warning(
    shared: FleetStore, make: object, caplog: pytest.LogCaptureFixture
) -> None:
    assert callable(make)
    await write_raw(shared, "k", make())
    with caplog.at_level(logging.WARNING, logger="tokenfleet"):
        assert await shared.get("k") is None
        assert await shared.get("k") is None
    warnings = [r for r in caplog.records if r.name == "tokenfleet"]
    assert len(warnings) == 1  # rate-limited per store
    assert "unreadable entry" in warnings[0].getMessage()
    await shared.set("k", make_token(), 60)  # and the key works again
    assert await shared.get("k") is not None


async def write_cooldown(store: FleetStore, key: str, data: bytes) -> None:
    if isinstance(store, FileStore):
        store._file(key, ".cooldown").write_bytes(data)
    else:
        assert isinstance(store, RedisStore)
        await store._client.set(store._key(key, ":cooldown"), data, px=60_000)


async def test_a_deeply_nested_cooldown_is_no_cooldown(shared: FleetStore) -> None:
    await write_cooldown(shared, "k", with_deep_tail((time.time() + 30, "planted")))
    assert await shared.get_cooldown("k") is None
    until = time.time() + 30
    await shared.set_cooldown("k", until, "HTTP 429")  # and the key works again
    assert await shared.get_cooldown("k") == (pytest.approx(until), "HTTP 429")


async def test_a_deeply_nested_tombstone_is_skipped(tmp_path: Path) -> None:
    listener, other = FileStore(tmp_path / "s"), FileStore(tmp_path / "s")
    events = listener.invalidations()
    try:
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)
        (listener.path / "bad.inv").write_bytes(with_deep_tail(("k", "*")))
        await other.delete("good")
        assert await asyncio.wait_for(first, 5) == ("good", "*")
    finally:
        await listener.aclose()
        await events.aclose()


@pytest.mark.redis
@pytest.mark.parametrize("message", [with_deep_tail(("k", "*")), deep()], ids=["tail", "bare"])
async def test_a_deeply_nested_pubsub_message_is_skipped(redis_url: str, message: bytes) -> None:
    listener, other = RedisStore(redis_url), RedisStore(redis_url)
    events = listener.invalidations()
    try:
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)
        await other._client.publish(other.channel, message)
        await other._client.publish(other.released_channel, message)
        await other.delete("good")
        assert await asyncio.wait_for(first, 5) == ("good", "*")
    finally:
        await listener.aclose()
        await other.aclose()
        await events.aclose()
