"""A 401 drops the token under the scopes the integration asked for, even when the
manager keeps no near cache (it cannot find the token's key by looking at what it holds)."""

from __future__ import annotations

import aiohttp
import httpx

import tokenfleet.aiohttp
import tokenfleet.httpx
from helpers import client_for
from tokenfleet import TokenManager
from tokenfleet.testing import DevAuthServer


async def test_aiohttp_401_refetches_for_its_scopes_without_a_near_cache(
    idp: DevAuthServer,
) -> None:
    async with TokenManager(client_for(idp), near_cache=False) as tokens:
        old = await tokens.get_token(["orders:write"])
        idp.revoke(old.access_token)
        auth = tokenfleet.aiohttp.BearerAuth(tokens, ["orders:write"])
        async with (
            aiohttp.ClientSession(base_url=idp.url, middlewares=[auth]) as http,
            http.get("/resource") as response,
        ):
            assert response.status == 200
        assert idp.token_requests() == 2
        assert (await tokens.get_token(["orders:write"])).access_token != old.access_token


async def test_httpx_401_refetches_for_its_scopes_without_a_near_cache(
    idp: DevAuthServer,
) -> None:
    async with TokenManager(client_for(idp), near_cache=False) as tokens:
        old = await tokens.get_token(["orders:write"])
        idp.revoke(old.access_token)
        auth = tokenfleet.httpx.BearerAuth(tokens, ["orders:write"], origins=[idp.url])
        async with httpx.AsyncClient(auth=auth) as http:
            response = await http.get(idp.resource_url)
            assert response.status_code == 200
        assert idp.token_requests() == 2
