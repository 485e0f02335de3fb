"""Encryption at rest: ``AesGcmCipher`` on the file store and a real redis-server.

What it promises: the cache holds no readable token; old keys still decrypt, new writes
use the first key; a wrong, missing or foreign key, an entry copied to another cache key
or edited, is a miss with one rate-limited warning that shows neither key nor token;
compare-and-delete still works on ciphertext.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tokenfleet
from helpers import make_token, manager_for, read_raw, write_raw
from tokenfleet import (
    AesGcmCipher,
    ConfigurationError,
    FileStore,
    RedisStore,
    Secret,
    TokenManager,
)
from tokenfleet.stores import FleetStore, _codec
from tokenfleet.testing import DevAuthServer

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
KEY_C = b"\x07" * 32
ACCESS = "eyJhbGciOi.super-secret-access-token.sig"


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "tokens") if kind == "file" else request.getfixturevalue("redis_url")


def open_store(kind: str, location: str, cipher: AesGcmCipher | None) -> FleetStore:
    if kind == "file":
        return FileStore(location, cipher=cipher)
    return RedisStore(location, cipher=cipher)


@pytest.fixture
async def stores(kind: str, location: str) -> AsyncIterator[dict[str, FleetStore]]:
    """One backend seen through several ciphers, as processes with different keys see it."""
    opened = {
        "a": open_store(kind, location, AesGcmCipher(KEY_A)),
        "ba": open_store(kind, location, AesGcmCipher([KEY_B, KEY_A])),
        "b": open_store(kind, location, AesGcmCipher(KEY_B)),
        "c": open_store(kind, location, AesGcmCipher(KEY_C)),
        "none": open_store(kind, location, None),
    }
    yield opened
    for store in opened.values():
        await store.aclose()


# ---------------------------------------------------------------------- the stores


async def test_the_cache_holds_no_readable_token(stores: dict[str, FleetStore]) -> None:
    token = make_token(ACCESS)
    await stores["a"].set("k", token, 60)
    data = await read_raw(stores["a"], "k")
    assert ACCESS.encode() not in data
    assert b"super-secret" not in data
    assert data.startswith(_codec.header(token.fingerprint))  # the fingerprint is in clear
    assert await stores["a"].get("k") == token


async def test_rotation_old_keys_decrypt_new_writes_use_the_first(
    stores: dict[str, FleetStore],
) -> None:
    old, new = make_token("old-token"), make_token("new-token")
    await stores["a"].set("k", old, 60)
    assert await stores["ba"].get("k") == old  # the old key still decrypts
    await stores["ba"].set("k", new, 60)
    assert await stores["b"].get("k") == new  # written with the first key (B)...
    assert await stores["a"].get("k") is None  # ...which a process holding only A lacks


@pytest.mark.parametrize(
    ("writer", "reader", "reason"),
    [
        ("a", "c", "the cipher refused it"),
        ("a", "none", "an encrypted entry, and this store has no cipher"),
        ("none", "a", "an unencrypted entry, refused because this store encrypts"),
    ],
)
async def test_a_wrong_or_missing_key_is_a_miss_with_one_quiet_warning(
    stores: dict[str, FleetStore],
    caplog: pytest.LogCaptureFixture,
    writer: str,
    reader: str,
    reason: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    await stores[writer].set("k", make_token(ACCESS), 60)
    for _ in range(5):
        assert await stores[reader].get("k") is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # rate-limited: one per period per store
    assert reason in warnings[0].getMessage()
    shown = " ".join(r.getMessage() for r in caplog.records)
    for forbidden in (ACCESS, "super-secret", KEY_A.hex(), base64.b64encode(KEY_A).decode()):
        assert forbidden not in shown


async def test_an_entry_copied_to_another_key_does_not_decrypt(
    stores: dict[str, FleetStore],
) -> None:
    await stores["a"].set("client-1", make_token(ACCESS), 60)
    await write_raw(stores["a"], "client-2", await read_raw(stores["a"], "client-1"))
    assert await stores["a"].get("client-2") is None
    assert await stores["a"].get("client-1") is not None


async def test_an_entry_with_its_deadline_extended_does_not_decrypt(
    stores: dict[str, FleetStore],
) -> None:
    token = make_token(ACCESS)
    await stores["a"].set("k", token, 60)
    envelope = _codec._envelope_decoder.decode(await read_raw(stores["a"], "k"))
    forged = _codec._Envelope(envelope.v, envelope.fp, envelope.until + 3600, envelope.token)
    await write_raw(stores["a"], "k", _codec._encoder.encode(forged))
    assert await stores["a"].get("k") is None


async def test_flipped_ciphertext_bits_are_a_miss(stores: dict[str, FleetStore]) -> None:
    await stores["a"].set("k", make_token(ACCESS), 60)
    data = bytearray(await read_raw(stores["a"], "k"))
    for index in (-1, -20, -40):
        tampered = bytearray(data)
        tampered[index] ^= 0x01
        await write_raw(stores["a"], "k", bytes(tampered))
        assert await stores["a"].get("k") is None


async def test_compare_and_delete_works_on_ciphertext(stores: dict[str, FleetStore]) -> None:
    old, new = make_token("old-token"), make_token("new-token")
    await stores["a"].set("k", new, 60)
    assert not await stores["a"].delete("k", old)  # holds another token: kept
    assert await stores["a"].get("k") == new
    # a process without the key can still delete exactly this token (header in clear)
    assert await stores["none"].delete("k", new)
    assert await stores["a"].get("k") is None


async def test_managers_share_one_encrypted_token(
    idp: DevAuthServer, kind: str, location: str
) -> None:
    def manager() -> TokenManager:
        return manager_for(idp, open_store(kind, location, AesGcmCipher.from_env(environ=ENV)))

    async with manager() as one, manager() as two:
        first = await one.get_token()
        assert await two.get_token() == first
        assert idp.token_requests() == 1
        assert isinstance(two.store, FleetStore)
        assert first.access_token.encode() not in await read_raw(two.store, two.cache_key())


# ---------------------------------------------------------------------- the key ring

ENV = {"TOKENFLEET_ENCRYPTION_KEYS": base64.b64encode(KEY_A).decode()}


def test_from_env_reads_a_ring_newest_first() -> None:
    b64 = [base64.b64encode(k).decode() for k in (KEY_B, KEY_A)]
    ring = AesGcmCipher.from_env("K", {"K": f" {b64[0]}, {b64[1]} "})
    assert ring.key_ids == (AesGcmCipher(KEY_B).key_id, AesGcmCipher(KEY_A).key_id)
    named = AesGcmCipher.from_env("K", {"K": f"2025-06:{b64[0]} 2024-12:{b64[1]}"})
    assert named.key_ids == ("2025-06", "2024-12")
    assert named.key_id == "2025-06"
    urlsafe = base64.urlsafe_b64encode(b"\xfb" * 32).decode()
    assert AesGcmCipher.from_env("K", {"K": urlsafe}).key_id == AesGcmCipher(b"\xfb" * 32).key_id


def test_given_key_ids_travel_with_the_entry() -> None:
    writer = AesGcmCipher({"v2": KEY_B, "v1": KEY_A})
    reader = AesGcmCipher({"v1": KEY_A, "v2": KEY_B})
    sealed = writer.seal(b"data", b"aad")
    assert b"v2" in sealed[:4]
    assert reader.open(sealed, b"aad") == b"data"
    assert AesGcmCipher({"v2": KEY_A}).open(sealed, b"aad") is None  # same id, wrong key
    assert reader.open(sealed, b"other aad") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "unset or empty"),
        ("not base64!", "key 1 is not valid base64"),
        (base64.b64encode(b"short").decode(), "key 1 decodes to 5 bytes, need 32"),
        (f"{base64.b64encode(KEY_A).decode()} :{base64.b64encode(KEY_B).decode()}", "no id"),
    ],
)
def test_bad_environment_keys_are_configuration_errors(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as error:
        AesGcmCipher.from_env("K", {"K": value})
    assert base64.b64encode(KEY_B).decode() not in str(error.value)


@pytest.mark.parametrize(
    "keys",
    [[], b"x" * 16, "a" * 32, [KEY_A, KEY_A], {"": KEY_A}, {"é": KEY_A}, {"x" * 33: KEY_A}],
)
def test_bad_keys_are_configuration_errors(keys: object) -> None:
    with pytest.raises(ConfigurationError):
        AesGcmCipher(keys)  # type: ignore[arg-type]


def test_keys_never_show_and_secrets_are_accepted() -> None:
    cipher = AesGcmCipher([Secret(KEY_A), KEY_B])
    shown = repr(cipher) + str(cipher)
    assert KEY_A.hex() not in shown and repr(KEY_A) not in shown
    assert cipher.key_ids[0] in shown
    assert cipher.open(cipher.seal(b"x", b""), b"") == b"x"
    assert len(base64.b64decode(AesGcmCipher.generate_key())) == 32
    assert tokenfleet.stores.AesGcmCipher is AesGcmCipher


@given(data=st.binary(max_size=200), aad=st.binary(max_size=20))
def test_open_never_raises(data: bytes, aad: bytes) -> None:
    cipher = AesGcmCipher([KEY_A, KEY_B])
    assert cipher.open(data, aad) is None
    sealed = cipher.seal(data, aad)
    assert cipher.open(sealed, aad) == data
