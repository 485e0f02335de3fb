"""tokenfleet.aiohttp.BearerAuth against the dev server and a second origin, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from resource_recorder import Recorder

from helpers import client_for
from tokenfleet import ConfigurationError, TokenManager
from tokenfleet.aiohttp import BearerAuth
from tokenfleet.testing import DevAuthServer


@pytest.fixture
async def other() -> AsyncIterator[Recorder]:
    async with Recorder() as server:
        yield server


@pytest.fixture
async def tokens(idp: DevAuthServer) -> AsyncIterator[TokenManager]:
    async with TokenManager(client_for(idp)) as manager:
        yield manager


def session(base_url: str | None, *middlewares: BearerAuth) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=base_url, middlewares=middlewares)


# --------------------------------------------------------------------------- the header


async def test_sets_the_header_from_the_manager(idp: DevAuthServer, tokens: TokenManager) -> None:
    async with session(idp.url, BearerAuth(tokens)) as http, http.get("/resource") as response:
        assert response.status == 200
        assert (await response.json())["ok"] is True
    assert idp.token_requests() == 1


async def test_the_header_is_the_managers_token(other: Recorder, tokens: TokenManager) -> None:
    async with session(other.url, BearerAuth(tokens)) as http, http.get("/ok") as response:
        assert response.status == 200
    assert other.authorizations == [(await tokens.get_token()).authorization]


async def test_per_request_middleware(idp: DevAuthServer, tokens: TokenManager) -> None:
    auth = BearerAuth(tokens, origins=[idp.url])
    async with aiohttp.ClientSession() as http:
        async with http.get(idp.resource_url, middlewares=[auth]) as response:
            assert response.status == 200
        async with http.get(idp.resource_url) as response:
            assert response.status == 401  # the session itself has no middleware


async def test_scopes_are_passed_to_the_manager(idp: DevAuthServer, tokens: TokenManager) -> None:
    auth = BearerAuth(tokens, ["orders:write"])
    async with session(idp.url, auth) as http, http.get("/resource") as response:
        assert (await response.json())["scope"] == "orders:write"


# --------------------------------------------------------------------------- 401 and retry


async def test_401_invalidates_that_token_and_retries_once(
    idp: DevAuthServer, tokens: TokenManager
) -> None:
    old = await tokens.get_token()
    idp.revoke(old.access_token)
    async with session(idp.url, BearerAuth(tokens)) as http, http.get("/resource") as response:
        assert response.status == 200
    assert idp.token_requests() == 2
    assert idp.resource_requests == 2
    assert (await tokens.get_token()).access_token != old.access_token


@pytest.mark.parametrize("challenge", ["1", "0"], ids=["invalid_token", "no-challenge"])
async def test_second_401_is_returned_as_is(
    other: Recorder, tokens: TokenManager, challenge: str
) -> None:
    params = {"challenge": challenge}
    async with (
        session(other.url, BearerAuth(tokens)) as http,
        http.get("/401", params=params) as response,
    ):
        assert response.status == 401
        assert (await response.json()) == {"ok": False}
    first, second = other.authorizations
    assert first is not None and second is not None and first != second


async def test_first_401_is_released_before_the_retry(
    other: Recorder, tokens: TokenManager
) -> None:
    # One connection, and a 401 body too big to arrive before anyone reads it: unless the
    # middleware releases the first response, the retry waits for a connection forever.
    connector = aiohttp.TCPConnector(limit=1)
    middlewares = [BearerAuth(tokens)]
    async with (
        aiohttp.ClientSession(other.url, connector=connector, middlewares=middlewares) as http,
        asyncio.timeout(5),
        http.get("/401", params={"size": str(4 * 2**20)}) as response,
    ):
        assert response.status == 401
        assert len(await response.read()) == 4 * 2**20
    assert len(other.authorizations) == 2


async def test_concurrent_401s_for_one_revoked_token_fetch_one_new_token(
    idp: DevAuthServer, tokens: TokenManager
) -> None:
    idp.revoke((await tokens.get_token()).access_token)

    async def call(http: aiohttp.ClientSession) -> int:
        async with http.get("/resource") as response:
            await response.read()
            return response.status

    async with session(idp.url, BearerAuth(tokens)) as http:
        statuses = await asyncio.gather(*(call(http) for _ in range(1_000)))
    assert statuses == [200] * 1_000
    assert idp.token_requests() == 2  # the warm-up token and exactly one replacement


# --------------------------------------------------------------------------- request bodies


async def test_in_memory_body_is_replayed(idp: DevAuthServer, tokens: TokenManager) -> None:
    idp.revoke((await tokens.get_token()).access_token)
    async with (
        session(idp.url, BearerAuth(tokens)) as http,
        http.post("/resource", json={"order": 1}) as response,
    ):
        assert response.status == 200
    assert idp.resource_requests == 2


async def test_streamed_body_is_not_retried(idp: DevAuthServer, tokens: TokenManager) -> None:
    old = await tokens.get_token()
    idp.revoke(old.access_token)

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk-1"
        yield b"chunk-2"

    async with session(idp.url, BearerAuth(tokens)) as http:
        async with http.post("/resource", data=body()) as response:
            assert response.status == 401
        assert idp.resource_requests == 1
        # The token was still dropped: the caller's own retry gets a fresh one.
        assert (await tokens.get_token()).access_token != old.access_token
        async with http.get("/resource") as response:
            assert response.status == 200


# --------------------------------------------------------------------------- what is left alone


async def test_token_endpoint_requests_bypass_the_middleware(idp: DevAuthServer) -> None:
    # The token client shares the authenticated session; client_secret_post sends no
    # Authorization header, so without the bypass the middleware would add one and wait
    # on the very fetch it is part of.
    auth: BearerAuth | None = None

    async def late_bound(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        assert auth is not None  # the session must exist before the client that uses it
        return await auth(request, handler)

    async with aiohttp.ClientSession(idp.url, middlewares=[late_bound]) as http:
        client = client_for(idp, auth_method="client_secret_post", session=http)
        async with TokenManager(client) as manager:
            auth = BearerAuth(manager)
            async with asyncio.timeout(5), http.get("/resource") as response:
                assert response.status == 200
    assert [r.status for r in idp.requests_log] == [200]


async def test_existing_authorization_header_is_left_alone(
    idp: DevAuthServer, other: Recorder, tokens: TokenManager
) -> None:
    headers = {"Authorization": "Basic dXNlcjpwdw=="}
    async with (
        session(other.url, BearerAuth(tokens)) as http,
        http.get("/ok", headers=headers) as response,
    ):
        assert response.status == 200
    assert other.authorizations == ["Basic dXNlcjpwdw=="]
    assert idp.token_requests() == 0


# --------------------------------------------------------------------------- origins


async def test_default_origin_is_the_sessions_base_url(
    idp: DevAuthServer, other: Recorder, tokens: TokenManager
) -> None:
    async with session(idp.url, BearerAuth(tokens)) as http:
        async with http.get(other.url + "/ok") as response:
            assert response.status == 200
        async with http.get("/resource") as response:
            assert response.status == 200
    assert other.authorizations == [None]


async def test_explicit_origins(idp: DevAuthServer, other: Recorder, tokens: TokenManager) -> None:
    async with session(None, BearerAuth(tokens, origins=idp.url)) as http:
        async with http.get(other.url + "/ok") as response:
            assert response.status == 200
        async with http.get(idp.resource_url) as response:
            assert response.status == 200
    assert other.authorizations == [None]


async def test_no_origins_pins_the_first_origin(
    idp: DevAuthServer, other: Recorder, tokens: TokenManager, caplog: pytest.LogCaptureFixture
) -> None:
    async with session(None, BearerAuth(tokens)) as http:
        async with http.get(idp.resource_url) as response:
            assert response.status == 200  # the first origin asked for gets the token
        async with http.get(other.url + "/ok") as response:
            assert response.status == 200
        async with http.get(idp.resource_url) as response:
            assert response.status == 200
    assert other.authorizations == [None]  # another origin never does
    pinned = [r for r in caplog.records if "first origin asked for" in r.getMessage()]
    assert len(pinned) == 1


async def test_resource_indicator_gives_the_default_origin(
    idp: DevAuthServer, other: Recorder
) -> None:
    manager = TokenManager(client_for(idp, resource=idp.resource_url))
    async with manager, session(None, BearerAuth(manager)) as http:
        async with http.get(other.url + "/ok") as response:
            assert response.status == 200
        async with http.get(idp.resource_url) as response:
            assert response.status == 200
    assert other.authorizations == [None]


async def test_redirect_to_another_origin_carries_no_token(
    other: Recorder, tokens: TokenManager
) -> None:
    async with Recorder() as second, session(other.url, BearerAuth(tokens)) as http:
        params = {"to": second.url + "/ok"}
        async with http.get("/redirect", params=params) as response:
            assert response.status == 200
    assert other.authorizations[0] is not None
    assert second.authorizations == [None]


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        ("http://api.example.com", "plain http"),
        ("https://api.example.com/v1", "path"),
        ("api.example.com", "absolute"),
        ([], "empty"),
    ],
)
async def test_bad_origins_are_refused(tokens: TokenManager, origins: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BearerAuth(tokens, origins=origins)


async def test_insecure_http_can_be_allowed_for_tests(tokens: TokenManager) -> None:
    BearerAuth(tokens, origins="http://api.example.com", allow_insecure_http=True)


async def test_plain_http_base_url_is_refused(tokens: TokenManager) -> None:
    async with session("http://api.example.com", BearerAuth(tokens)) as http:
        with pytest.raises(ConfigurationError, match="plain http"):
            await http.get("/orders")
