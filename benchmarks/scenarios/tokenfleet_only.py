"""Scenario 6, tokenfleet alone: RedisStore with and without the near cache beside a
bare redis GET; memory of 100,000 cached tokens; JWT reading and verification."""

from __future__ import annotations

import gc
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _support import dev_server, per_call_ns, redis_server

import tokenfleet


def _client(server: Any, **kwargs: Any) -> tokenfleet.ClientCredentials:
    return tokenfleet.ClientCredentials(
        server.token_url,
        client_id=server.client_id,
        client_secret=server.client_secret,
        **kwargs,
    )


async def redis_store(latency: float, calls: int = 5_000, rounds: int = 5) -> dict[str, Any]:
    """RedisStore: with the near cache (ns) beside MemoryStore; without it (µs) beside a
    bare redis-py GET of the same key, interleaved, in one process."""
    import redis.asyncio as aioredis

    with (
        tempfile.TemporaryDirectory() as workdir,
        redis_server(workdir) as url,
        dev_server(latency=latency) as server,
    ):
        memory = tokenfleet.TokenManager(_client(server))
        near = tokenfleet.TokenManager(_client(server), store=tokenfleet.RedisStore(url))
        direct = tokenfleet.TokenManager(
            _client(server), store=tokenfleet.RedisStore(url), near_cache=False
        )
        bare = aioredis.Redis.from_url(url)
        for manager in (memory, near, direct):
            await manager.get_token()
        key = "tokenfleet:{" + near.cache_key().removeprefix("tokenfleet:") + "}"  # its key

        async def bare_get() -> object:
            return await bare.get(key)

        columns: dict[str, list[float]] = {
            "memory_ns": [],
            "near_ns": [],
            "direct_ns": [],
            "bare_get_ns": [],
        }
        for _ in range(rounds):
            columns["memory_ns"].append(await per_call_ns(memory.get_token, calls * 20))
            columns["near_ns"].append(await per_call_ns(near.get_token, calls * 20))
            columns["bare_get_ns"].append(await per_call_ns(bare_get, calls))
            columns["direct_ns"].append(await per_call_ns(direct.get_token, calls))
        for manager in (memory, near, direct):
            await manager.aclose()
        await bare.aclose()
    return {name: min(values) for name, values in columns.items()}


class _StubSource:
    """Hands out distinct copies of one real access token, instantly, for any scopes."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.issued = 0

    def cache_key(self, scopes: Any = None) -> str:
        return f"stub:{scopes}"

    async def token(self, scopes: Any = None) -> tokenfleet.Token:
        self.issued += 1
        now = time.time()
        access = f"{self.template[:-8]}{self.issued:08d}"  # same length as a real token
        return tokenfleet.Token(
            access_token=access, expires_at=now + 3600, issued_at=now, scopes=(str(scopes),)
        )


def _rss() -> int:
    """Resident set size in bytes (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


async def memory(latency: float, method: str, count: int = 100_000) -> dict[str, Any]:
    """Memory held by ``count`` cached tokens (distinct scopes, one real JWT's length) in
    a TokenManager with a MemoryStore, by ``method``: "tracemalloc" (Python allocations
    still alive) or "rss" (growth of the resident set; no tracemalloc running)."""
    with dev_server(latency=latency) as server:
        async with _client(server) as client:
            template = (await client.fetch_token()).access_token
    source = _StubSource(template)
    store = tokenfleet.MemoryStore(max_entries=count)
    manager = tokenfleet.TokenManager(source, store=store)
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else _rss()
    for number in range(count):
        await manager.get_token(f"scope{number}")
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else _rss()
    tracemalloc.stop()
    cached = len(store)
    await manager.aclose()
    return {
        "tokens": count,
        "in_store": cached,
        "token_chars": len(template),
        "bytes": after - before,
    }


async def jwt_costs(latency: float, calls: int = 2_000, rounds: int = 5) -> dict[str, Any]:
    """µs per token: reading claims (tokenfleet's first access; cached access; pyjwt
    unverified), full JWTVerifier verification with the JWKS cached, and a bare
    ``jwt.decode`` with the key in hand, interleaved in one process."""
    import jwt as pyjwt

    from tokenfleet._jwt import claims as _jwt

    audience = "https://api.example"
    with dev_server(latency=latency) as server:
        async with _client(server, audience=audience) as client:
            token = await client.fetch_token()
        raw = token.access_token
        issuer, jwks_url = server.info["issuer"], server.info["jwks_url"]
        async with tokenfleet.JWTVerifier(
            issuer=issuer, audience=audience, jwks_url=jwks_url
        ) as verifier:
            await verifier.verify(raw)  # fetch the JWKS once
            key = pyjwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(raw).key  # setup only

            async def read_first() -> object:  # what parsing a fresh token costs
                return _jwt.claims_from(_jwt.split_jws(raw, signature=False))

            async def read_cached() -> object:
                return token.claims

            async def read_pyjwt() -> object:
                return pyjwt.decode(raw, options={"verify_signature": False})

            async def verify() -> object:
                return await verifier.verify(raw)

            async def bare_decode() -> object:
                return pyjwt.decode(
                    raw, key, algorithms=["RS256"], audience=audience, issuer=issuer
                )

            cases = {
                "read_us": read_first,
                "read_cached_us": read_cached,
                "read_pyjwt_us": read_pyjwt,
                "verify_us": verify,
                "bare_decode_us": bare_decode,
            }
            columns: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(rounds):
                for name, case in cases.items():
                    columns[name].append(await per_call_ns(case, calls) / 1000)
    return {name: min(values) for name, values in columns.items()}
