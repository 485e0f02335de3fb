"""ClientCredentials(issuer=...): RFC 8414 and OpenID Connect Discovery, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from helpers import client_for, pem_pair
from tokenfleet import (
    ClientCredentials,
    ConfigurationError,
    DiscoveryError,
    IssuerMismatch,
    TokenManager,
    TransportError,
    UnsupportedAuthMethod,
)
from tokenfleet.testing import DevAuthServer


@pytest.fixture(params=["", "/tenant1"], ids=["no-path", "path"])
async def idp(
    request: pytest.FixtureRequest, idp_factory: Callable[..., Awaitable[DevAuthServer]]
) -> DevAuthServer:
    return await idp_factory(issuer_path=request.param)


def by_issuer(idp: DevAuthServer, issuer: str | None = None, **kw: Any) -> ClientCredentials:
    return client_for(idp, issuer=issuer or idp.issuer, **kw)


async def test_discovers_the_token_endpoint(idp: DevAuthServer) -> None:
    async with by_issuer(idp) as client:
        await client.fetch_token()
        await client.fetch_token()
        meta = await client.metadata()
    assert meta.url == idp.metadata_url  # RFC 8414 first, path inserted (§3.1)
    assert meta.token_endpoint == idp.token_url and meta.jwks_uri == idp.jwks_url
    assert idp.metadata_requests == 1 and idp.token_requests() == 2


async def test_falls_back_to_openid_configuration(idp: DevAuthServer) -> None:
    idp.serve_rfc8414 = False
    async with by_issuer(idp) as client:
        await client.fetch_token()
        meta = await client.metadata()
    assert meta.url == idp.openid_configuration_url
    assert idp.metadata_requests == 2


async def test_no_metadata_anywhere(idp: DevAuthServer) -> None:
    idp.serve_rfc8414 = idp.serve_openid_configuration = False
    async with by_issuer(idp) as client:
        with pytest.raises(DiscoveryError, match="HTTP 404"):
            await client.fetch_token()
    assert idp.token_requests() == 0


async def test_concurrent_first_fetches_discover_once(idp: DevAuthServer) -> None:
    async with by_issuer(idp) as client:
        await asyncio.gather(*(client.fetch_token() for _ in range(50)))
    assert idp.metadata_requests == 1


async def test_mismatched_issuer_is_refused(idp: DevAuthServer) -> None:
    idp.metadata_overrides = {"issuer": "https://evil.example"}
    async with by_issuer(idp) as client:
        with pytest.raises(IssuerMismatch, match="mix-up") as info:
            await client.fetch_token()
    assert info.value.expected == idp.issuer
    assert info.value.actual == "https://evil.example"
    assert idp.metadata_requests == 1  # not "try the other URL": the answer is final
    assert idp.token_requests() == 0


async def test_trailing_slash_is_another_issuer(idp: DevAuthServer) -> None:
    async with by_issuer(idp, issuer=idp.issuer + "/") as client:
        with pytest.raises(IssuerMismatch):
            await client.fetch_token()


async def test_unsupported_auth_method(idp: DevAuthServer) -> None:
    idp.metadata_overrides = {
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "tls_client_auth"]
    }
    async with by_issuer(idp) as client:
        with pytest.raises(UnsupportedAuthMethod) as info:
            await client.fetch_token()
    message = str(info.value)
    assert "client_secret_basic" in message and "private_key_jwt, tls_client_auth" in message
    assert isinstance(info.value, ConfigurationError)
    assert idp.token_requests() == 0


async def test_discovered_endpoint_must_be_https_off_loopback(idp: DevAuthServer) -> None:
    idp.metadata_overrides = {"token_endpoint": "http://idp.example.com/token"}
    async with by_issuer(idp) as client:
        with pytest.raises(DiscoveryError, match="plain http"):
            await client.fetch_token()


async def test_unreachable_issuer() -> None:
    async with ClientCredentials(
        issuer="http://127.0.0.1:9", client_id="c", client_secret="s", timeout=2
    ) as client:
        with pytest.raises(TransportError):
            await client.fetch_token()


async def test_client_secret_jwt_assertion_audience_is_the_issuer(idp: DevAuthServer) -> None:
    async with by_issuer(idp, auth_method="client_secret_jwt") as client:
        await client.fetch_token()


async def test_private_key_jwt_by_issuer(idp: DevAuthServer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem, public = pem_pair(key)
    idp.register_client("signer", public_key=public, auth_methods=["private_key_jwt"])
    async with ClientCredentials(
        issuer=idp.issuer, client_id="signer", auth_method="private_key_jwt", private_key=pem
    ) as client:
        token = await client.fetch_token()
    assert token.claims is not None and token.claims.client_id == "signer"
    assert jwt.get_unverified_header(token.access_token)["typ"] == "at+jwt"


async def test_token_url_and_issuer_together(idp: DevAuthServer) -> None:
    async with ClientCredentials(
        idp.token_url,
        issuer=idp.issuer,
        client_id=idp.client_id,
        client_secret=idp.client_secret,
    ) as client:
        await client.fetch_token()
        assert idp.metadata_requests == 0  # an explicit token_url needs no discovery
        assert (await client.metadata()).token_endpoint == idp.token_url


async def test_cache_key_is_stable_and_names_the_issuer(idp: DevAuthServer) -> None:
    first, second = by_issuer(idp), by_issuer(idp)
    by_url = ClientCredentials(
        idp.token_url, client_id=idp.client_id, client_secret=idp.client_secret
    )
    key = first.cache_key()
    async with first, second, by_url:
        await first.fetch_token()
        assert first.cache_key() == key == second.cache_key()  # discovery changes nothing
        assert by_url.cache_key() != key
        assert (
            by_url.cache_key()
            == ClientCredentials(
                idp.token_url,
                issuer=idp.issuer,
                client_id=idp.client_id,
                client_secret=idp.client_secret,
            ).cache_key()
        )


async def test_with_a_token_manager(idp: DevAuthServer) -> None:
    async with TokenManager(by_issuer(idp)) as tokens:
        tasks = [tokens.get_token() for _ in range(100)]
        assert len({t.access_token for t in await asyncio.gather(*tasks)}) == 1
    assert idp.token_requests() == 1 and idp.metadata_requests == 1


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"token_url= .* or issuer="):
        ClientCredentials(client_id="c", client_secret="s")
    with pytest.raises(ConfigurationError, match="issuer"):
        ClientCredentials(issuer="http://idp.example.com", client_id="c", client_secret="s")
    client = ClientCredentials("https://idp.example.com/token", client_id="c", client_secret="s")
    assert "issuer" not in repr(client)
    by_iss = ClientCredentials(issuer="https://idp.example.com", client_id="c", client_secret="s")
    assert repr(by_iss).startswith("ClientCredentials(issuer='https://idp.example.com'")


async def test_metadata_needs_an_issuer() -> None:
    async with ClientCredentials(
        "https://idp.example.com/token", client_id="c", client_secret="s"
    ) as client:
        with pytest.raises(ConfigurationError, match="no issuer"):
            await client.metadata()
