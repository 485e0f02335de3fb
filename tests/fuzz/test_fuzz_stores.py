"""Fuzzing what a shared store can find, and what ``store_from_url`` can be given.

Bytes under a token key (random, or a real envelope truncated, bit-flipped, spliced or
carrying deeply nested msgpack; sealed or not) in a file and in a real redis-server:
``get`` gives ``None`` or a token, never raises; cooldown bytes give a cooldown or none.
Store URLs (random text, and URLs near the valid ones): a store, or a
``ConfigurationError``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_server import RedisServer
from tokenfleet import AesGcmCipher, ConfigurationError, Token
from tokenfleet.stores import FileStore, RedisStore, TokenStore, _codec, store_from_url

CIPHER = AesGcmCipher(b"k" * 32)


def envelope(sealed: bool) -> bytes:
    now = time.time()
    token = Token(access_token="tok-123", expires_at=now + 60, issued_at=now, scopes=("a",))
    return _codec.encode(token, now + 60, cipher=CIPHER if sealed else None, key="k")


@st.composite
def stored_bytes(draw: st.DrawFn) -> bytes:
    real = envelope(draw(st.booleans()))
    how = draw(st.sampled_from(["random", "truncated", "flipped", "spliced", "nested"]))
    if how == "nested":
        return nested(draw, real)
    if how == "random":
        return draw(st.binary(max_size=300))
    if how == "truncated":
        return real[: draw(st.integers(0, len(real)))]
    if how == "flipped":
        data = bytearray(real)
        for index in draw(st.lists(st.integers(0, len(real) - 1), min_size=1, max_size=3)):
            data[index] ^= draw(st.integers(1, 255))
        return bytes(data)
    cut = draw(st.integers(0, len(real)))
    return real[:cut] + draw(st.binary(max_size=40)) + real[cut:]


def nested(draw: st.DrawFn, real: bytes) -> bytes:
    """Deep msgpack nesting (msgspec recurses once per level): alone, as an extra trailing
    member of a real envelope, or spliced into it."""
    depth = draw(st.sampled_from([100, 1_000, 5_000, 50_000]))
    deep = draw(st.sampled_from([b"\x91", b"\x81\xa1a", b"\xdc\x00\x01"])) * depth + b"\xc0"
    where = draw(st.sampled_from(["alone", "tail", "spliced"]))
    if where == "alone":
        return deep
    if where == "tail":
        return bytes([real[0] + 1]) + real[1:] + deep  # 0x94 -> 0x95: a fifth member
    cut = draw(st.integers(0, len(real)))
    return real[:cut] + deep + real[cut:]


_settings = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("cipher", [None, CIPHER], ids=["clear", "sealed"])
def test_file_store_reads_any_bytes_as_a_miss_or_a_token(
    tmp_path: Path, cipher: AesGcmCipher | None
) -> None:
    store = FileStore(tmp_path / "s", cipher=cipher)

    @_settings
    @given(stored_bytes())
    def check(data: bytes) -> None:
        store._file("k", ".tok").write_bytes(data)
        token = asyncio.run(store.get("k"))
        assert token is None or token.access_token == "tok-123"

    check()


@pytest.mark.redis
@pytest.mark.parametrize("cipher", [None, CIPHER], ids=["clear", "sealed"])
def test_redis_store_reads_any_bytes_as_a_miss_or_a_token(
    redis_server: RedisServer, cipher: AesGcmCipher | None
) -> None:
    redis_server.start()

    @_settings
    @given(stored_bytes())
    def check(data: bytes) -> None:
        async def read() -> Token | None:
            store = RedisStore(redis_server.url, cipher=cipher, prefix="fuzz")
            try:
                await store._client.set(store._key("k"), data)
                return await store.get("k")
            finally:
                await store.aclose()

        token = asyncio.run(read())
        assert token is None or token.access_token == "tok-123"

    check()


_cooldown = _codec.encode_cooldown(time.time() + 30, "HTTP 429")


@st.composite
def cooldown_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return nested(draw, _cooldown)
    return draw(st.binary(max_size=100))


def test_file_store_reads_any_cooldown_bytes_as_none_or_a_cooldown(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")

    @_settings
    @given(cooldown_bytes())
    def check(data: bytes) -> None:
        store._file("k", ".cooldown").write_bytes(data)
        cooldown = asyncio.run(store.get_cooldown("k"))
        assert cooldown is None or isinstance(cooldown[1], str)

    check()


# ---------------------------------------------------------------------- store URLs

_schemes = st.sampled_from(
    [
        *("memory", "file", "redis", "rediss", "unix", "REDIS", "http", ""),
        *("redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster", "redis+x"),
    ]
)
_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
_netlocs = st.one_of(
    st.sampled_from(["", "localhost", "127.0.0.1:1", ":pw@h:6379", "u:p@[::1]:99", "h:notaport"]),
    st.sampled_from(["h1:1,h2:2", "h1,,h2", ",", "a:b@h:1,[::1]:2", "h:99999,h:1", "é:1"]),
    _printable.filter(lambda s: "~" not in s),
)
_queries = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *("db", "socket_timeout", "password", "ssl_cert_reqs", "health_check_interval"),
                *("x", "service_name", "sentinel_password", "ssl_check_hostname", "timeout"),
            ]
        ),
        st.sampled_from(["0", "-1", "abc", "1e9", "", "none", "%zz"]),
    ),
    max_size=3,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))


@st.composite
def store_urls(draw: st.DrawFn, root: Path) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=40))  # anything at all (scheme mostly unknown)
    scheme = draw(_schemes)
    if scheme == "file":
        # Confined to the test's directory: a fuzzer must not create directories elsewhere.
        return f"file://{root}/{draw(_printable.map(lambda s: s.replace('..', '')))}"
    query = draw(_queries)
    path = draw(
        st.sampled_from(
            ["", "/", "/0", "/15", "/99999", "/x", "/tmp/redis.sock", "/m/0", "/m/x/1"]
        )
    )
    return f"{scheme}://{draw(_netlocs)}{path}{'?' + query if query else ''}"


def test_store_from_url_gives_a_store_or_a_configuration_error(tmp_path: Path) -> None:
    @_settings
    @given(store_urls(tmp_path))
    def check(url: str) -> None:
        async def build() -> None:
            try:
                store = store_from_url(url)
            except ConfigurationError:
                return
            assert isinstance(store, TokenStore)
            await store.aclose()

        asyncio.run(build())

    check()


# ---------------------------------------------------------------------- invalidations
# msgspec reports invalid UTF-8 in a str as UnicodeDecodeError, which the tombstone and
# pub/sub parsers do not catch (file.py _read_tombstone, redis.py _invalidation): the
# iterator dies on one bad message and FleetSignals.listen restarts it after 1 s.

BAD_UTF8 = b"\x92\xa2k\xff\xa1*"  # msgpack of ("k<0xff>", "*"): not UTF-8


async def test_a_tombstone_with_invalid_utf8_is_skipped(tmp_path: Path) -> None:
    listener, other = FileStore(tmp_path / "s"), FileStore(tmp_path / "s")
    events = listener.invalidations()
    try:
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)
        (listener.path / "bad.inv").write_bytes(BAD_UTF8)
        await other.delete("good")
        assert await asyncio.wait_for(first, 3) == ("good", "*")
    finally:
        await listener.aclose()
        await events.aclose()


@pytest.mark.redis
async def test_a_pubsub_message_with_invalid_utf8_is_skipped(redis_url: str) -> None:
    listener, other = RedisStore(redis_url), RedisStore(redis_url)
    events = listener.invalidations()
    try:
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)
        await other._client.publish(other.channel, BAD_UTF8)
        await other.delete("good")
        assert await asyncio.wait_for(first, 3) == ("good", "*")
    finally:
        await listener.aclose()
        await other.aclose()
        await events.aclose()
