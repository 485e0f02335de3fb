"""Where BearerAuth sends the token, over real HTTP with both integrations: never to the
token endpoint however its URL is spelled, and a refused origin is explained once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from resource_recorder import Recorder
from yarl import URL

import tokenfleet.aiohttp
import tokenfleet.httpx
from helpers import client_for
from tokenfleet import ClientCredentials, TokenManager
from tokenfleet._bearer import endpoint_of, is_endpoint
from tokenfleet.testing import DevAuthServer

# Spellings of the dev server's token endpoint (/token) that a server may well route to
# it: trailing slash, doubled slashes, dot segments, case, percent-encoding.
SPELLINGS = ["/token/", "//token", "/TOKEN", "/./token", "/x/../token", "/%74oken", "/token//"]


@pytest.fixture
async def tokens(idp: DevAuthServer) -> AsyncIterator[TokenManager]:
    async with TokenManager(client_for(idp)) as manager:
        yield manager


@pytest.mark.parametrize(
    ("url", "token_url"),
    [
        ("HTTPS://IDP.Example:443/oauth/token/", "https://idp.example/oauth/token"),
        ("https://idp.example./oauth//token", "https://idp.example:443/oauth/token"),
        ("http://idp.example:80/OAuth/%74oken", "http://idp.example/oauth/token"),
        ("https://idp.example/a/b/../../oauth/./token?x=1#f", "https://idp.example/oauth/token"),
    ],
)
def test_token_endpoint_spellings_are_the_token_endpoint(url: str, token_url: str) -> None:
    assert is_endpoint(URL(url), endpoint_of(URL(token_url)))


@pytest.mark.parametrize(
    "url", ["https://idp.example/oauth/token2", "https://other.example/oauth/token"]
)
def test_other_urls_are_not_the_token_endpoint(url: str) -> None:
    assert not is_endpoint(URL(url), endpoint_of(URL("https://idp.example/oauth/token")))


async def test_token_endpoint_spellings_get_no_token_with_aiohttp(
    idp: DevAuthServer, tokens: TokenManager
) -> None:
    auth = tokenfleet.aiohttp.BearerAuth(tokens, origins=[idp.url])
    async with aiohttp.ClientSession(middlewares=[auth]) as http:
        for path in SPELLINGS:
            async with http.post(URL(idp.url + path, encoded=True), data={}) as response:
                sent = response.request_info.headers.get("Authorization")
            assert sent is None, f"{path} got the bearer token"
        async with http.get(idp.resource_url) as response:  # the API still gets it
            assert response.status == 200


async def test_token_endpoint_spellings_get_no_token_with_httpx(
    idp: DevAuthServer, tokens: TokenManager
) -> None:
    auth = tokenfleet.httpx.BearerAuth(tokens, origins=[idp.url])
    async with httpx.AsyncClient(auth=auth) as http:
        for path in SPELLINGS:
            response = await http.post(idp.url + path, data={})
            assert "Authorization" not in response.request.headers, f"{path} got the token"
        assert (await http.get(idp.resource_url)).status_code == 200


@pytest.mark.parametrize("integration", ["aiohttp", "httpx"])
async def test_a_refused_origin_is_explained_once_at_info(
    idp: DevAuthServer,
    tokens: TokenManager,
    caplog: pytest.LogCaptureFixture,
    integration: str,
) -> None:
    caplog.set_level(logging.INFO, logger="tokenfleet")
    async with Recorder() as other, Recorder() as third:
        urls = [other.url + "/ok", other.url + "/ok", third.url + "/ok"]
        if integration == "aiohttp":
            auth = tokenfleet.aiohttp.BearerAuth(tokens, origins=[idp.url])
            async with aiohttp.ClientSession(middlewares=[auth]) as http:
                for url in urls:
                    async with http.get(url) as response:
                        assert response.status == 200
        else:
            async with httpx.AsyncClient(
                auth=tokenfleet.httpx.BearerAuth(tokens, origins=[idp.url])
            ) as http:
                for url in urls:
                    assert (await http.get(url)).status_code == 200
        assert other.authorizations == [None, None] and third.authorizations == [None]
    said = [r for r in caplog.records if r.levelno == logging.INFO and "origins=" in r.message]
    assert [other.url in r.message for r in said] == [True, False]
    assert [third.url in r.message for r in said] == [False, True]


@pytest.mark.parametrize("integration", ["aiohttp", "httpx"])
async def test_an_origin_that_gains_a_token_endpoint_stops_getting_the_token(
    idp: DevAuthServer, tokens: TokenManager, integration: str
) -> None:
    """The per-origin verdict the integrations cache is dropped when a client of this
    process notes a token endpoint at that origin later: never a stale "allowed"."""
    async with Recorder() as api:

        async def get_ok(http: aiohttp.ClientSession | httpx.AsyncClient) -> None:
            if isinstance(http, aiohttp.ClientSession):
                async with http.get(api.url + "/ok") as response:
                    assert response.status == 200
            else:
                assert (await http.get(api.url + "/ok")).status_code == 200

        async def two_requests(http: aiohttp.ClientSession | httpx.AsyncClient) -> None:
            await get_ok(http)
            await get_ok(http)  # the origin's verdict now cached
            ClientCredentials(api.url + "/ok", client_id="c", client_secret="s")  # noted
            await get_ok(http)

        if integration == "aiohttp":
            auth = tokenfleet.aiohttp.BearerAuth(tokens, origins=[api.url])
            async with aiohttp.ClientSession(middlewares=[auth]) as session:
                await two_requests(session)
        else:
            auth_x = tokenfleet.httpx.BearerAuth(tokens, origins=[api.url])
            async with httpx.AsyncClient(auth=auth_x) as client:
                await two_requests(client)
    token = await tokens.get_token()
    assert api.authorizations == [token.authorization, token.authorization, None]
