"""The requests tokenfleet makes for itself (token, discovery, JWKS), over real HTTP:
bodies read whole however they arrive, no credential in any exception chain, never
routed through our own BearerAuth middleware, and Retry-After honoured on every retried
status."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from helpers import client_for
from hostile import Deferred, assert_no_credentials, basic, malformed_http_server
from tokenfleet import (
    ClientCredentials,
    InvalidTokenResponse,
    JWTVerifier,
    OAuthError,
    Retry,
    ServerError,
    TokenFleetError,
    TokenManager,
    TransportError,
)
from tokenfleet._manager.backoff import Backoff
from tokenfleet.aiohttp import BearerAuth
from tokenfleet.testing import DevAuthServer, Fault

# ------------------------------------------------------------------ bodies read whole


async def test_trickled_discovery_and_jwks_documents_are_read_whole(idp: DevAuthServer) -> None:
    # A 3 KB metadata document and the JWK Set, each in 8-byte chunks over 0.3 s: one
    # read() returns only the first chunk(s) that arrived.
    idp.metadata_overrides = {"service_documentation": "https://docs.example/" + "x" * 3000}
    idp.document_trickle = 0.3
    async with (
        client_for(idp, issuer=idp.issuer) as client,
        JWTVerifier(issuer=idp.issuer, audience=None) as verifier,
    ):
        token = await client.fetch_token()
        claims = await verifier.verify(token)
    assert claims.iss == idp.issuer
    assert idp.metadata_requests == 2  # once for the client, once for the verifier


# ------------------------------------------------------------------ exception chains


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_malformed_response_error_chain_carries_no_credentials(auth_method: Any) -> None:
    server = await malformed_http_server()
    port = server.sockets[0].getsockname()[1]
    secret = "s3cr3t-that-must-not-leak"
    try:
        client = ClientCredentials(
            f"http://127.0.0.1:{port}/token",
            client_id="svc",
            client_secret=secret,
            auth_method=auth_method,
            retry=Retry(attempts=1),
        )
        async with TokenManager(client) as tokens:
            with pytest.raises(TransportError) as caught:
                await tokens.get_token()
    finally:
        server.close()
        await server.wait_closed()
    assert_no_credentials(caught.value, secret, basic("svc", secret))


@pytest.mark.parametrize("status", [400, 401, 503])
async def test_raise_for_status_session_error_chain_carries_no_credentials(
    idp: DevAuthServer, status: int
) -> None:
    idp.inject_fault(Fault(status=status))
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        client = client_for(
            idp,
            session=session,
            retry=Retry(attempts=1),
        )
        with pytest.raises(TokenFleetError) as caught:
            await client.fetch_token()
    # The token endpoint's own answer, not aiohttp's ClientResponseError.
    assert isinstance(caught.value, OAuthError | ServerError)
    assert caught.value.status == status
    assert_no_credentials(caught.value, idp.client_secret, basic(idp.client_id, idp.client_secret))


async def test_dropped_connection_error_chain_carries_no_credentials(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(drop_connection=True))
    client = client_for(
        idp,
        retry=Retry(attempts=1),
    )
    async with client:
        with pytest.raises(TransportError) as caught:
            await client.fetch_token()
    assert_no_credentials(caught.value, idp.client_secret, basic(idp.client_id, idp.client_secret))


# ------------------------------------------------------------------ our own middleware


@pytest.mark.parametrize("managers", [1, 2], ids=["one-manager", "two-managers"])
async def test_own_requests_bypass_bearer_auth_on_a_shared_session(
    idp: DevAuthServer, managers: int
) -> None:
    """An issuer-only client and a verifier share the session that carries BearerAuth
    (two of them: each one's token request crosses the other's middleware). Before, the
    discovery request waited in the middleware for a token that needed discovery."""
    deferred = Deferred()
    async with aiohttp.ClientSession(middlewares=[deferred]) as session:
        tokens = [
            TokenManager(
                client_for(
                    idp,
                    issuer=idp.issuer,
                    scopes=[f"scope{n}"],
                    session=session,
                )
            )
            for n in range(managers)
        ]
        deferred.middlewares += [BearerAuth(t, origins=[idp.url]) for t in tokens]
        verifier = JWTVerifier(issuer=idp.issuer, audience=None, session=session)
        try:
            async with asyncio.timeout(20):  # a regression fails here instead of hanging
                async with session.get(idp.resource_url) as response:
                    assert response.status == 200
                    sent = response.request_info.headers["Authorization"]
                claims = await verifier.verify(sent.removeprefix("Bearer "))
        finally:
            for manager in tokens:
                await manager.aclose()
            await verifier.aclose()
    assert claims.scopes == ("scope0",)  # the outermost middleware's token
    assert idp.token_requests() == 1  # the inner middleware saw a token and kept out


# ------------------------------------------------------------------ Retry-After


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_retry_after_is_honoured_for_every_retried_status(
    idp: DevAuthServer, status: int
) -> None:
    idp.inject_fault(Fault(status=status, retry_after=1), count=1)
    client = client_for(
        idp,
        retry=Retry(attempts=2, backoff=0),  # without Retry-After: again at once
    )
    async with client:
        await client.fetch_token()
    first, second = idp.requests_log
    assert second.arrival - first.arrival >= 0.9


async def test_spent_retries_say_what_happened(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(status=503))
    client = client_for(
        idp,
        retry=Retry(attempts=3, backoff=0),
    )
    async with client:
        with pytest.raises(ServerError) as caught:
            await client.fetch_token()
    message = str(caught.value)
    assert "HTTP 503" in message and "after 3 attempts" in message
    assert "will be retried" not in message


def test_fleet_backoff_waits_for_a_server_errors_retry_after() -> None:
    backoff = Backoff(min_delay=0.1, max_delay=60.0, clock=lambda: 0.0)
    error = ServerError("down", status=503, retry_after=20.0)  # type: ignore[call-arg]
    assert backoff.delay("key", error) >= 20.0


# ------------------------------------------------------------------ hostile documents

NESTED = '{"a":' + "[" * 5000 + "]" * 5000 + "}"  # 10 KB; discovery and JWKS: unit + fuzz


async def test_deeply_nested_token_response_over_http_is_a_typed_error(
    idp: DevAuthServer,
) -> None:
    idp.inject_fault(Fault(status=200, body=NESTED), count=1)
    idp.inject_fault(Fault(status=400, body=NESTED), count=1)
    client = ClientCredentials(
        idp.token_url, client_id=idp.client_id, client_secret=idp.client_secret
    )
    async with client:
        with pytest.raises(InvalidTokenResponse):
            await client.fetch_token()
        with pytest.raises(OAuthError):
            await client.fetch_token()
        assert (await client.fetch_token()).access_token
