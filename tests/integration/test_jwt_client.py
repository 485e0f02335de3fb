"""Reading JWT access tokens on the client side: expiry and scopes from the JWT, opaque
tokens, and granted-versus-requested scopes, against the dev authorization server."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from helpers import client_for
from tokenfleet import InsufficientScope, MemoryStore, TokenManager
from tokenfleet.testing import DevAuthServer


async def fetch(idp: DevAuthServer, **kw: Any) -> Any:
    async with client_for(idp, **kw) as client:
        return await client.fetch_token()


async def test_claims_of_a_dev_server_token(idp: DevAuthServer) -> None:
    token = await fetch(idp, scopes="a b", audience="https://api.example")
    claims = token.claims
    assert claims is not None
    assert claims.is_access_token and claims.typ == "at+jwt"
    assert claims.iss == idp.issuer and claims.aud == "https://api.example"
    assert claims.client_id == claims.sub == idp.client_id
    assert claims.scopes == ("a", "b") and claims.jti
    assert claims.exp is not None and abs(claims.exp - token.expires_at) < 2
    assert token.access_token not in repr(claims)


async def test_without_expires_in_the_jwt_exp_is_used(idp: DevAuthServer) -> None:
    idp.include_expires_in = False
    idp.token_lifetime = 120
    token = await fetch(idp, default_lifetime=3600)
    assert token.claims is not None
    assert token.expires_at == token.claims.exp
    assert 119 <= token.lifetime <= 121


async def test_with_both_the_earlier_wins(idp: DevAuthServer) -> None:
    idp.token_lifetime = 120
    idp.reported_expires_in = 600  # the server overstates expires_in
    token = await fetch(idp)
    assert token.claims is not None and token.expires_at == token.claims.exp
    idp.token_lifetime = 3600
    idp.reported_expires_in = 60  # expires_in is the earlier one
    token = await fetch(idp)
    assert 59 <= token.lifetime <= 60


async def test_opaque_tokens_are_not_decoded(
    idp: DevAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    idp.opaque_tokens = True
    idp.include_expires_in = False
    with caplog.at_level(logging.DEBUG, logger="tokenfleet"):
        token = await fetch(idp, scopes=["a"], default_lifetime=900)
    assert token.claims is None
    assert token.lifetime == 900 and token.scopes == ("a",)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("claim", ["scope", "scp"])
async def test_scopes_from_the_jwt_when_the_response_has_none(
    idp: DevAuthServer, claim: str
) -> None:
    idp.register_client("svc", "s3cret", grant_fewer_scopes=["b"])
    idp.include_scope = False
    idp.scope_claim = claim
    token = await fetch(idp, client_id="svc", client_secret="s3cret", scopes="a b")
    assert token.scopes == ("a",)


async def test_granted_fewer_warns_once_per_scope_set(
    idp: DevAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    idp.register_client("svc", "s3cret", grant_fewer_scopes=["admin"])
    client = client_for(idp, client_id="svc", client_secret="s3cret", scopes="read admin")
    async with TokenManager(client, store=MemoryStore()) as tokens:
        with caplog.at_level(logging.WARNING, logger="tokenfleet"):
            token = await tokens.get_token()
            await tokens.invalidate(token)
            await tokens.get_token()  # a second fetch for the same key: no second warning
            await tokens.get_token(scopes="admin write")  # another key: its own warning
    warnings = [r.getMessage() for r in caplog.records if "was granted" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert "missing 'admin'" in warnings[0]
    assert token.scopes == ("read",)
    assert idp.token_requests("svc") == 3
    assert idp.client_secret not in caplog.text and token.access_token not in caplog.text


async def test_require_scopes_raises(idp: DevAuthServer) -> None:
    idp.register_client("svc", "s3cret", grant_fewer_scopes=["admin"])
    client = client_for(
        idp, client_id="svc", client_secret="s3cret", scopes="read admin", require_scopes=True
    )
    async with client:
        with pytest.raises(InsufficientScope, match="missing 'admin'") as info:
            await client.fetch_token()
        assert info.value.requested == ("read", "admin")
        assert info.value.granted == ("read",)
        assert (await client.fetch_token(scopes="read")).scopes == ("read",)


async def test_require_scopes_sees_jwt_only_scopes(idp: DevAuthServer) -> None:
    idp.register_client("svc", "s3cret", grant_fewer_scopes=["admin"])
    idp.include_scope = False
    async with client_for(
        idp, client_id="svc", client_secret="s3cret", scopes="read admin", require_scopes=True
    ) as client:
        with pytest.raises(InsufficientScope):
            await client.fetch_token()


async def test_reading_claims_costs_nothing_on_the_hot_path(idp: DevAuthServer) -> None:
    """Reading is cached per token: the second access is a dict lookup."""
    token = await fetch(idp)
    started = time.perf_counter()
    for _ in range(10_000):
        assert token.claims is not None
    assert (time.perf_counter() - started) / 10_000 < 20e-6
