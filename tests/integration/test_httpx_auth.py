"""tokenfleet.httpx.BearerAuth against the dev server and a second origin, over real HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from resource_recorder import Recorder

from helpers import client_for
from tokenfleet import ClientCredentials, ConfigurationError, Refresh, TokenManager
from tokenfleet.httpx import BearerAuth
from tokenfleet.testing import DevAuthServer

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
async def other() -> AsyncIterator[Recorder]:
    async with Recorder() as server:
        yield server


@pytest.fixture
async def tokens(idp: DevAuthServer) -> AsyncIterator[TokenManager]:
    async with TokenManager(client_for(idp)) as manager:
        yield manager


# --------------------------------------------------------------------------- the header


async def test_sets_the_header_from_the_manager(
    idp: DevAuthServer, other: Recorder, tokens: TokenManager
) -> None:
    auth = BearerAuth(tokens, origins=[idp.url, other.url])
    async with httpx.AsyncClient(auth=auth) as http:
        assert (await http.get(idp.resource_url)).json()["ok"] is True
        assert (await http.get(other.url + "/ok")).status_code == 200
    assert other.authorizations == [(await tokens.get_token()).authorization]
    assert idp.token_requests() == 1


async def test_per_request_auth_and_scopes(idp: DevAuthServer, tokens: TokenManager) -> None:
    auth = BearerAuth(tokens, ["orders:write"], origins=idp.url)
    async with httpx.AsyncClient() as http:
        response = await http.get(idp.resource_url, auth=auth)
        assert response.json()["scope"] == "orders:write"
        assert (await http.get(idp.resource_url)).status_code == 401


# --------------------------------------------------------------------------- 401 and retry


async def test_401_invalidates_that_token_and_retries_once(
    idp: DevAuthServer, tokens: TokenManager
) -> None:
    old = await tokens.get_token()
    idp.revoke(old.access_token)
    async with httpx.AsyncClient(auth=BearerAuth(tokens, origins=idp.url)) as http:
        response = await http.get(idp.resource_url)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]  # read and closed by httpx
    assert idp.token_requests() == 2
    assert (await tokens.get_token()).access_token != old.access_token


@pytest.mark.parametrize("challenge", ["1", "0"], ids=["invalid_token", "no-challenge"])
async def test_second_401_is_returned_as_is(
    other: Recorder, tokens: TokenManager, challenge: str
) -> None:
    async with httpx.AsyncClient(auth=BearerAuth(tokens, origins=other.url)) as http:
        response = await http.get(other.url + "/401", params={"challenge": challenge})
    assert response.status_code == 401
    assert response.json() == {"ok": False}
    first, second = other.authorizations
    assert first is not None and second is not None and first != second


# httpx costs ~6 ms a request here once hundreds queue on one client's pool (and more with
# every request queued: 1,000 on one client took 3 minutes), so the requests are spread
# over 20 clients sharing one BearerAuth. The auth flows still run concurrently; the
# aiohttp test does the same with 1,000 requests on one session in under a second.
@pytest.mark.parametrize("callers", [200, pytest.param(1_000, marks=pytest.mark.slow)])
async def test_concurrent_401s_for_one_revoked_token_fetch_one_new_token(
    idp: DevAuthServer, tokens: TokenManager, callers: int
) -> None:
    idp.revoke((await tokens.get_token()).access_token)
    auth = BearerAuth(tokens, origins=idp.url)
    timeout = httpx.Timeout(30.0, pool=None)  # requests queue for the pool's connections
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(auth=auth, timeout=timeout))
            for _ in range(20)
        ]
        responses = await asyncio.gather(
            *(clients[i % 20].get(idp.resource_url) for i in range(callers))
        )
    assert [r.status_code for r in responses] == [200] * callers
    assert idp.token_requests() == 2  # the warm-up token and exactly one replacement


# --------------------------------------------------------------------------- request bodies


async def test_in_memory_body_is_replayed(idp: DevAuthServer, tokens: TokenManager) -> None:
    idp.revoke((await tokens.get_token()).access_token)
    async with httpx.AsyncClient(auth=BearerAuth(tokens, origins=idp.url)) as http:
        response = await http.post(idp.resource_url, json={"order": 1})
    assert response.status_code == 200
    assert idp.resource_requests == 2


async def test_streamed_body_is_not_retried(idp: DevAuthServer, tokens: TokenManager) -> None:
    old = await tokens.get_token()
    idp.revoke(old.access_token)

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk-1"
        yield b"chunk-2"

    async with httpx.AsyncClient(auth=BearerAuth(tokens, origins=idp.url)) as http:
        response = await http.post(idp.resource_url, content=body())
        assert response.status_code == 401
        assert idp.resource_requests == 1
        assert (await tokens.get_token()).access_token != old.access_token
        assert (await http.get(idp.resource_url)).status_code == 200


# --------------------------------------------------------------------------- what is left alone


async def test_token_endpoint_and_existing_header_are_left_alone(
    idp: DevAuthServer, other: Recorder, tokens: TokenManager
) -> None:
    auth = BearerAuth(tokens, origins=[idp.url, other.url])
    async with httpx.AsyncClient(auth=auth) as http:
        form = {"grant_type": "client_credentials", "client_id": idp.client_id}
        response = await http.post(idp.token_url, data=form)
        assert response.status_code == 401  # no client authentication, and no bearer token
        await http.get(other.url + "/ok", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert other.authorizations == ["Basic dXNlcjpwdw=="]
    assert idp.token_requests() == 1  # the client's own POST; the manager fetched nothing


async def test_other_origins_get_no_token(
    idp: DevAuthServer, other: Recorder, tokens: TokenManager
) -> None:
    async with httpx.AsyncClient(auth=BearerAuth(tokens, origins=idp.url)) as http:
        assert (await http.get(other.url + "/ok")).status_code == 200
        redirect = {"to": other.url + "/ok"}
        async with Recorder() as first:  # an allowed origin that redirects elsewhere
            auth = BearerAuth(tokens, origins=first.url)
            response = await http.get(
                first.url + "/redirect", params=redirect, auth=auth, follow_redirects=True
            )
            assert response.status_code == 200
            assert first.authorizations[0] is not None
    assert other.authorizations == [None, None]


async def test_resource_indicator_gives_the_default_origin(
    idp: DevAuthServer, other: Recorder
) -> None:
    manager = TokenManager(client_for(idp, resource=idp.resource_url))
    async with manager, httpx.AsyncClient(auth=BearerAuth(manager)) as http:
        assert (await http.get(idp.resource_url)).status_code == 200
        assert (await http.get(other.url + "/ok")).status_code == 200
    assert other.authorizations == [None]


async def test_no_origins_pins_the_first_origin(
    idp: DevAuthServer, other: Recorder, tokens: TokenManager
) -> None:
    async with httpx.AsyncClient(auth=BearerAuth(tokens)) as http:
        assert (await http.get(idp.resource_url)).status_code == 200
        assert (await http.get(other.url + "/ok")).status_code == 200
        assert (await http.get(idp.resource_url)).status_code == 200
    assert other.authorizations == [None]


@pytest.mark.parametrize(
    "origins", ["http://api.example.com", "https://api.example.com/v1", "api.example.com", []]
)
async def test_bad_origins_are_refused(tokens: TokenManager, origins: Any) -> None:
    with pytest.raises(ConfigurationError):
        BearerAuth(tokens, origins=origins)


def test_sync_client_is_refused() -> None:
    client = ClientCredentials("http://127.0.0.1:9/token", client_id="c", client_secret="s")
    auth = BearerAuth(TokenManager(client), origins="http://127.0.0.1:9")
    with httpx.Client(auth=auth) as http, pytest.raises(ConfigurationError, match="async only"):
        http.get("http://127.0.0.1:9/orders")  # refused before anything is sent


# --------------------------------------------------------------------------- optional extra


def test_tokenfleet_imports_without_httpx() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["httpx"] = None  # as if httpx were not installed
        import tokenfleet
        import tokenfleet.aiohttp
        try:
            import tokenfleet.httpx
        except ImportError as exc:
            print("ImportError:", exc)
        else:
            raise SystemExit("tokenfleet.httpx imported without httpx")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONPATH": str(SRC), "PYTHONWARNINGS": "error"},
    )
    assert "pip install tokenfleet[httpx]" in result.stdout


async def test_min_ttl_keeps_a_token_from_expiring_in_the_pool_queue(idp: DevAuthServer) -> None:
    idp.token_lifetime = 10.0
    async with TokenManager(client_for(idp), refresh=Refresh(leeway=0.5)) as manager:
        auth = BearerAuth(manager, origins=idp.url, min_ttl=9.0)
        async with httpx.AsyncClient(auth=auth) as http:
            assert (await http.get(idp.resource_url)).status_code == 200
            await asyncio.sleep(0.6)  # the token now has < 9 s of usable life left
            assert (await http.get(idp.resource_url)).status_code == 200
    assert idp.token_requests() == 2
    with pytest.raises(ConfigurationError, match="min_ttl"):
        BearerAuth(manager, origins=idp.url, min_ttl=-1)
