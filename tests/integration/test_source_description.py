"""Sources describe themselves (``SourceDescription``); managers pass the description on,
and a bearer token never reaches a token endpoint, whatever wraps the client."""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
import httpx

import tokenfleet.aiohttp
import tokenfleet.httpx
from helpers import client_for
from tokenfleet import (
    ClientCredentials,
    DescribedSource,
    SourceDescription,
    Token,
    TokenManager,
)
from tokenfleet.testing import DevAuthServer


class Wrapper:
    """A custom source around a client: it forwards tokens and keys, and describes
    nothing (it has no ``describe()`` and names its client ``inner``, not ``source``)."""

    def __init__(self, inner: ClientCredentials) -> None:
        self.inner = inner

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        return await self.inner.token(scopes)

    def cache_key(self, scopes: str | Iterable[str] | None = None) -> str:
        return "wrapped:" + self.inner.cache_key(scopes)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Forwarding(Wrapper):
    """A wrapper that forwards its client's description too."""

    def describe(self) -> SourceDescription:
        return self.inner.describe()


def bearer(authorization: str | None) -> bool:
    return authorization is not None and authorization.startswith("Bearer ")


async def test_client_and_managers_describe_the_source(idp: DevAuthServer) -> None:
    client = client_for(idp, resource=idp.resource_url, timeout=7)
    described = client.describe()
    assert described == SourceDescription(
        client_id=idp.client_id,
        token_url=idp.token_url,
        resources=(idp.resource_url,),
        timeout=7.0,
    )
    async with TokenManager(client, fetch_timeout=3, lock_timeout=2) as inner:
        assert isinstance(inner, DescribedSource)
        assert inner.describe().token_url == idp.token_url
        assert inner.describe().timeout == 5.0  # the manager's own longest wait
        async with TokenManager(inner, close_source=False) as outer:
            assert outer.client_id == idp.client_id
            assert outer.fetch_timeout == 10.0  # the inner manager's wait plus 5 s
            assert outer.describe().resources == (idp.resource_url,)


async def test_a_source_without_a_description_is_described_as_nothing(idp: DevAuthServer) -> None:
    async with TokenManager(Wrapper(client_for(idp))) as manager:
        assert manager.describe() == SourceDescription(timeout=manager.fetch_timeout * 2)
        assert manager.client_id is None
        assert manager.fetch_timeout == 30.0  # no source timeout known


async def test_forwarded_resources_choose_the_origins(idp: DevAuthServer) -> None:
    source = Forwarding(client_for(idp, resource=idp.resource_url))
    async with (
        TokenManager(source) as manager,
        httpx.AsyncClient(auth=tokenfleet.httpx.BearerAuth(manager)) as http,
    ):
        assert (await http.get(idp.resource_url)).json()["ok"] is True


async def test_wrapped_client_never_sends_the_token_to_the_token_endpoint_httpx(
    idp: DevAuthServer,
) -> None:
    sent: dict[str, str | None] = {}

    async def record(request: httpx.Request) -> None:
        sent[request.url.path] = request.headers.get("Authorization")

    async with TokenManager(Wrapper(client_for(idp))) as manager:
        auth = tokenfleet.httpx.BearerAuth(manager, origins=[idp.url])  # its origin allowed
        async with httpx.AsyncClient(auth=auth, event_hooks={"request": [record]}) as http:
            assert (await http.get(idp.resource_url)).status_code == 200
            form = {"grant_type": "client_credentials", "client_id": idp.client_id}
            assert (await http.post(idp.token_url, data=form)).status_code == 401
    assert bearer(sent[httpx.URL(idp.resource_url).path])  # the API got the token
    assert not bearer(sent[httpx.URL(idp.token_url).path])  # the token endpoint did not


async def test_wrapped_client_never_sends_the_token_to_the_token_endpoint_aiohttp(
    idp: DevAuthServer,
) -> None:
    sent: dict[str, str | None] = {}

    async def record(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        sent[request.url.path] = request.headers.get("Authorization")
        return await handler(request)

    async with TokenManager(Wrapper(client_for(idp))) as manager:
        auth = tokenfleet.aiohttp.BearerAuth(manager, origins=[idp.url])
        async with aiohttp.ClientSession(middlewares=[auth, record]) as http:
            async with http.get(idp.resource_url) as response:
                assert response.status == 200
            form = {"grant_type": "client_credentials", "client_id": idp.client_id}
            async with http.post(idp.token_url, data=form) as response:
                assert response.status == 401
    assert bearer(sent[httpx.URL(idp.resource_url).path])
    assert not bearer(sent[httpx.URL(idp.token_url).path])
