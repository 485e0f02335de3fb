"""DPoP tokens in shared stores: the key travels sealed with the token, or not at all."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio

import tokenfleet.aiohttp
from helpers import client_for
from tokenfleet import (
    AesGcmCipher,
    ClientCredentials,
    DPoPKey,
    DPoPKeyNotSealed,
    FileStore,
    RedisStore,
    TokenManager,
    TokenStore,
)
from tokenfleet.testing import DevAuthServer


def client(idp: DevAuthServer) -> ClientCredentials:
    return client_for(idp, dpop=True)


def key_material(key: DPoPKey) -> list[bytes]:
    """Every form of the private key that must not appear in a store entry."""
    der = key._export()
    return [der, der[-32:], key._key.private_numbers().private_value.to_bytes(32, "big")]  # type: ignore[union-attr]


async def resource_ok(idp: DevAuthServer, tokens: TokenManager) -> bool:
    auth = tokenfleet.aiohttp.BearerAuth(tokens, origins=[idp.url])
    async with (
        aiohttp.ClientSession(middlewares=[auth]) as http,
        http.get(idp.resource_url) as response,
    ):
        return response.status == 200


@pytest.mark.redis
async def test_a_token_fetched_by_one_manager_is_usable_by_another_through_redis(
    idp: DevAuthServer, redis_url: str
) -> None:
    cipher = AesGcmCipher(b"k" * 32)
    async with TokenManager(client(idp), store=RedisStore(redis_url, cipher=cipher)) as first:
        token = await first.get_token()
        assert await resource_ok(idp, first)
    # Another "process": its own client and key, the same store and cipher.
    other_client = client(idp)
    async with TokenManager(other_client, store=RedisStore(redis_url, cipher=cipher)) as second:
        shared = await second.get_token()
        assert shared.access_token == token.access_token
        assert shared.dpop_key == token.dpop_key != other_client.dpop
        assert await resource_ok(idp, second)
    assert idp.token_requests() == 1 and idp.dpop.refused == {}
    async with redis.asyncio.Redis.from_url(redis_url) as raw:
        values = [await raw.get(k) for k in await raw.keys("*")]
    stored = b"".join(v for v in values if isinstance(v, bytes))
    assert token.access_token.encode() not in stored
    assert token.dpop_key is not None
    assert not any(material in stored for material in key_material(token.dpop_key))


async def test_a_file_store_with_a_cipher_shares_the_key_too(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    cipher = AesGcmCipher(b"f" * 32)
    async with TokenManager(client(idp), store=FileStore(tmp_path, cipher=cipher)) as first:
        token = await first.get_token()
    async with TokenManager(client(idp), store=FileStore(tmp_path, cipher=cipher)) as second:
        assert (await second.get_token()).dpop_key == token.dpop_key
        assert await resource_ok(idp, second)
    stored = read_all(tmp_path)
    assert token.dpop_key is not None
    assert not any(material in stored for material in key_material(token.dpop_key))


def read_all(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


@pytest.mark.redis
async def test_a_store_without_a_cipher_refuses_dpop_keys(
    idp: DevAuthServer, redis_url: str, tmp_path: Path
) -> None:
    async with client(idp) as source:
        token = await source.fetch_token()
    stores: list[TokenStore] = [RedisStore(redis_url), FileStore(tmp_path)]
    for store in stores:
        with pytest.raises(DPoPKeyNotSealed, match="cipher"):
            await store.set("k", token, 60)
        assert await store.get("k") is None
        await store.aclose()


@pytest.mark.redis
async def test_without_a_cipher_the_manager_keeps_dpop_tokens_per_process_and_says_so_once(
    idp: DevAuthServer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tokenfleet")
    async with TokenManager(client(idp), store=RedisStore(redis_url)) as tokens:
        for _ in range(3):
            await tokens.get_token()
        assert await resource_ok(idp, tokens)
    warnings = [r for r in caplog.records if "per process" in r.getMessage()]
    assert len(warnings) == 1 and "cipher" in warnings[0].getMessage()
    async with redis.asyncio.Redis.from_url(redis_url) as raw:
        assert [k for k in await raw.keys("*") if b"lock" not in k] == []
    assert idp.token_requests() == 1
