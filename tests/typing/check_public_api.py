"""Type checks of the public API, run by ``mypy --strict`` in the ``type`` tox env.

Every ``assert_type`` fails the type check if the public signatures drift.
"""

from __future__ import annotations

from typing import assert_type

import tokenfleet
from tokenfleet.stores import TokenStore


async def check() -> None:
    client = tokenfleet.ClientCredentials(
        "https://idp.example.com/token", client_id="svc", client_secret="s", scopes=["a"]
    )
    assert_type(await client.fetch_token(), tokenfleet.Token)
    assert_type(await client.token(["b"]), tokenfleet.Token)
    assert_type(client.cache_key(), str)

    store: TokenStore = tokenfleet.store_from_url("memory://")
    async with tokenfleet.TokenManager(client, store=store) as tokens:
        token = await tokens.get_token(scopes=["orders:write"], min_ttl=60)
        assert_type(token, tokenfleet.Token)
        assert_type(token.access_token, str)
        assert_type(token.expires_at, float)
        assert_type(token.scopes, tuple[str, ...])
        assert_type(token.authorization, str)
        assert_type(token.is_expired(leeway=5), bool)
        assert_type(tokens.stats.hits, int)
        await tokens.invalidate(token)

    secret = tokenfleet.Secret("x")
    assert_type(secret.reveal(), str | bytes)

    try:
        await client.fetch_token()
    except tokenfleet.OAuthError as exc:
        assert_type(exc.error, str | None)
        assert_type(exc.status, int | None)
    except tokenfleet.RateLimited as exc:
        assert_type(exc.retry_after, float | None)

    source: tokenfleet.TokenSource = tokens
    assert_type(await source.token(), tokenfleet.Token)


async def check_dpop() -> None:
    key = tokenfleet.DPoPKey.generate("EdDSA")
    client = tokenfleet.ClientCredentials(
        "https://idp.example.com/token", client_id="svc", client_secret="s", dpop=key
    )
    assert_type(client.dpop, tokenfleet.DPoPKey | None)
    token = await client.fetch_token()
    assert_type(token.dpop_key, tokenfleet.DPoPKey | None)
    assert_type(token.dpop_proof("GET", "https://api.example.com/x"), str)
    assert_type(key.thumbprint, str)
    verifier = tokenfleet.JWTVerifier(
        issuer="https://idp.example.com", audience=None, dpop=tokenfleet.DPoPVerifier()
    )
    claims = await verifier.verify(token, dpop_proof="p", method="GET", url="https://a/x")
    assert_type(claims, tokenfleet.Claims)
    try:
        assert_type(
            tokenfleet.DPoPVerifier().verify("p", method="GET", url="https://a/x", jkt="j"), str
        )
    except tokenfleet.DPoPProofError as exc:
        assert_type(exc.error, str)
        assert_type(exc.nonce, str | None)


async def first_contact() -> None:
    """Issue 16: configuration from the environment, check as a library call, the
    integrations as attributes of a bare ``import tokenfleet``."""
    client = tokenfleet.ClientCredentials.from_env(prefix="ORDERS_", timeout=5.0)
    assert_type(client, tokenfleet.ClientCredentials)
    tokens = tokenfleet.TokenManager.from_env()
    assert_type(tokens, tokenfleet.TokenManager)
    report = await tokenfleet.check(client, store="memory://", max_latency=1.0)
    assert_type(report, tokenfleet.CheckReport)
    assert_type(report.ok, bool)
    assert_type(report.exit_code, int)
    assert_type(report.failures, tuple[tokenfleet.CheckResult, ...])
    assert_type(report["scopes"].ok, bool | None)
    assert_type(tokenfleet.aiohttp.BearerAuth(tokens), tokenfleet.aiohttp.BearerAuth)
    signer = tokenfleet.ClientCredentials(
        "https://login.microsoftonline.com/t/oauth2/v2.0/token",
        client_id="app",
        private_key=b"-----BEGIN PRIVATE KEY-----...",
        certificate=b"-----BEGIN CERTIFICATE-----...",
    )
    assert_type(signer.auth_method, str)
