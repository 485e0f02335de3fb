"""What BearerAuth caches to keep its per-request cost low (benchmarks/ scenario 9), over
real HTTP with both integrations: a cached decision never carries the token to another
origin or to the token endpoint, and the manager's hot token is counted and never
replaces what scopes, ``min_ttl`` or an overridden ``get_token`` ask for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp
import httpx
import pytest
from resource_recorder import Recorder
from yarl import URL

import tokenfleet.aiohttp
import tokenfleet.httpx
from helpers import client_for
from tokenfleet import Refresh, Token, TokenManager
from tokenfleet.testing import DevAuthServer, make_test_pki

INTEGRATIONS = ["aiohttp", "httpx"]
# Spellings of the dev server's token endpoint (/token) a server may route to it.
SPELLINGS = ["/token", "/token/", "//token", "/TOKEN", "/./token", "/%74oken"]


@pytest.fixture
async def tokens(idp: DevAuthServer) -> AsyncIterator[TokenManager]:
    async with TokenManager(client_for(idp)) as manager:
        yield manager


def other_host(url: str) -> str:
    """``url`` with ``localhost`` for ``127.0.0.1``: the same server, port and path, but
    another origin (RFC 6454 §4: the host is part of it)."""
    assert "//127.0.0.1:" in url
    return url.replace("//127.0.0.1:", "//localhost:")


async def sent_authorizations(
    integration: str,
    auth: tokenfleet.aiohttp.BearerAuth | tokenfleet.httpx.BearerAuth,
    requests: Iterable[tuple[str, str]],
) -> list[str | None]:
    """The ``Authorization`` header each ``(method, url)`` went out with (None: none)."""
    sent: list[str | None] = []
    if integration == "aiohttp":
        assert isinstance(auth, tokenfleet.aiohttp.BearerAuth)
        async with aiohttp.ClientSession(middlewares=[auth]) as session:
            for method, url in requests:
                async with session.request(method, URL(url, encoded=True)) as response:
                    await response.read()
                    sent.append(response.request_info.headers.get("Authorization"))
    else:
        assert isinstance(auth, tokenfleet.httpx.BearerAuth)
        async with httpx.AsyncClient(auth=auth) as client:
            for method, url in requests:
                response = await client.request(method, url)
                sent.append(response.request.headers.get("Authorization"))
    return sent


@pytest.fixture(params=["fast reads", "public accessors"])
def url_reads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the integrations read a URL's parts (see ``tests/unit/test_url_parts.py``):
    the libraries' own attributes, and the public accessors another yarl or httpx gets."""
    if request.param == "public accessors":
        monkeypatch.setattr(tokenfleet.aiohttp, "SLOTS", False)
        monkeypatch.setattr(tokenfleet.httpx, "PARSED", False)
        monkeypatch.setattr(tokenfleet.httpx, "HEADER_LIST", False)
    return str(request.param)


def bearer_auth(
    integration: str, manager: TokenManager, **options: object
) -> tokenfleet.aiohttp.BearerAuth | tokenfleet.httpx.BearerAuth:
    module = tokenfleet.aiohttp if integration == "aiohttp" else tokenfleet.httpx
    return module.BearerAuth(manager, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- destinations


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_a_cached_verdict_never_reaches_another_host_with_the_same_path(
    tokens: TokenManager, integration: str, url_reads: str
) -> None:
    async with Recorder() as api:
        auth = bearer_auth(integration, tokens, origins=[api.url], allow_insecure_http=True)
        allowed, other = api.url + "/ok", other_host(api.url + "/ok")
        requests = [("GET", allowed), ("GET", other)] * 3
        sent = await sent_authorizations(integration, auth, requests)
    token = await tokens.get_token()
    assert sent == [token.authorization, None] * 3
    assert api.authorizations == sent


async def sent_even_if_failed(
    integration: str,
    auth: tokenfleet.aiohttp.BearerAuth | tokenfleet.httpx.BearerAuth,
    urls: Iterable[str],
    ssl_context: ssl.SSLContext,
    base_url: str | None = None,
) -> list[tuple[str, str | None]]:
    """The scheme and ``Authorization`` header (None: none) of each request as it left
    the auth layer, recorded just after it, whether or not the server then answered
    (aiohttp tries a request the server hung up on once more: both are recorded)."""
    sent: list[tuple[str, str | None]] = []
    if integration == "aiohttp":
        assert isinstance(auth, tokenfleet.aiohttp.BearerAuth)

        async def record(
            request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
        ) -> aiohttp.ClientResponse:
            sent.append((request.url.scheme, request.headers.get("Authorization")))
            return await handler(request)

        middlewares = [auth, record]
        async with aiohttp.ClientSession(base_url, middlewares=middlewares) as session:
            for url in urls:
                try:
                    async with session.get(url, ssl=ssl_context) as response:
                        await response.read()
                except aiohttp.ClientError:
                    pass  # plain HTTP to a TLS port: the server hangs up
    else:
        assert isinstance(auth, tokenfleet.httpx.BearerAuth)

        async def hook(request: httpx.Request) -> None:  # runs after the auth flow
            sent.append((request.url.scheme, request.headers.get("Authorization")))

        hooks = {"request": [hook]}
        async with httpx.AsyncClient(auth=auth, verify=ssl_context, event_hooks=hooks) as client:
            for url in urls:
                with contextlib.suppress(httpx.TransportError):  # plain HTTP to a TLS port
                    await client.get(url)
    return sent


async def assert_only_https_got_the_token(
    sent: list[tuple[str, str | None]], api: Recorder, tokens: TokenManager
) -> None:
    """Three or more plain http requests, the first before any verdict was cached, went
    without the token; the two https ones carried it, and only they reached the server."""
    token = await tokens.get_token()
    schemes = [scheme for scheme, _ in sent]
    assert schemes.count("https") == 2 and schemes.count("http") >= 3
    assert schemes[0] == "http"
    assert all(
        sent_with == (token.authorization if scheme == "https" else None)
        for scheme, sent_with in sent
    )
    assert api.authorizations == [token.authorization] * 2


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_an_https_verdict_never_covers_plain_http_to_the_same_host_and_port(
    tokens: TokenManager, integration: str, url_reads: str, tmp_path: Path
) -> None:
    """aiohttp keys an https origin's verdict by its authority alone (a str, cheaper
    than a tuple per request): plain http to the same host and port is another origin
    (RFC 6454 §4), refused before and after the https one is cached."""
    pki = make_test_pki(tmp_path, require_client_cert=False)
    client_context = pki.client_context(with_certificate=False)
    async with Recorder(ssl_context=pki.server_ssl_context) as api:
        secure = api.url + "/ok"
        plain = secure.replace("https://", "http://")
        auth = bearer_auth(integration, tokens, origins=[api.url])
        urls = [plain, secure, plain, secure, plain]
        sent = await sent_even_if_failed(integration, auth, urls, client_context)
        await assert_only_https_got_the_token(sent, api, tokens)


async def test_an_https_base_url_never_covers_plain_http_to_the_same_host_and_port(
    tokens: TokenManager, url_reads: str, tmp_path: Path
) -> None:
    """The same without ``origins=``: the session's https base_url allows its origin, and
    the verdict's key (authority and base_url) never covers plain http to its host and
    port, asked for by absolute URL on the same session."""
    pki = make_test_pki(tmp_path, require_client_cert=False)
    client_context = pki.client_context(with_certificate=False)
    async with Recorder(ssl_context=pki.server_ssl_context) as api:
        plain = api.url.replace("https://", "http://") + "/ok"
        auth = tokenfleet.aiohttp.BearerAuth(tokens)  # no origins=: the base_url's origin
        urls = [plain, "/ok", plain, "/ok", plain]
        sent = await sent_even_if_failed("aiohttp", auth, urls, client_context, api.url)
        await assert_only_https_got_the_token(sent, api, tokens)


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_cached_paths_keep_the_token_from_the_token_endpoint(
    idp: DevAuthServer, tokens: TokenManager, integration: str, url_reads: str
) -> None:
    """The token endpoint's own origin: each path's answer is cached; the resource gets
    the token every time, every spelling of the token endpoint never, and the same
    paths on another host of the same server never."""
    auth = bearer_auth(integration, tokens, origins=[idp.url])
    endpoint = [("POST", idp.url + path) for path in SPELLINGS]
    elsewhere = [("GET", other_host(idp.resource_url))]
    elsewhere += [("POST", other_host(idp.url + path)) for path in SPELLINGS]
    requests = [("GET", idp.resource_url), *endpoint, *elsewhere] * 3
    sent = await sent_authorizations(integration, auth, requests)
    token = await tokens.get_token()
    assert sent == ([token.authorization] + [None] * (len(requests) // 3 - 1)) * 3


# --------------------------------------------------------------------------- the hot token


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_each_request_counts_as_a_hit(
    idp: DevAuthServer, tokens: TokenManager, integration: str
) -> None:
    await tokens.get_token()
    await tokens.get_token()  # warm: the manager's hot token from here on
    assert tokens._hot is not None
    hits = tokens.stats.hits
    auth = bearer_auth(integration, tokens, origins=[idp.url])
    sent = await sent_authorizations(integration, auth, [("GET", idp.resource_url)] * 5)
    assert sent == [(await tokens.get_token()).authorization] * 5
    assert tokens.stats.hits == hits + 5 + 1
    assert tokens.stats.misses == 1 and idp.token_requests() == 1


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_scopes_are_not_served_the_hot_default_token(
    idp: DevAuthServer, tokens: TokenManager, integration: str
) -> None:
    await tokens.get_token()
    default = await tokens.get_token()  # now the hot token
    assert tokens._hot is default
    scoped = bearer_auth(integration, tokens, scopes=["orders:write"], origins=[idp.url])
    sent = await sent_authorizations(integration, scoped, [("GET", idp.resource_url)] * 2)
    assert sent[0] == sent[1] != default.authorization
    assert sent[0] == (await tokens.get_token(["orders:write"])).authorization


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_min_ttl_is_not_served_the_hot_default_token(
    idp: DevAuthServer, integration: str
) -> None:
    idp.token_lifetime = 10.0
    async with TokenManager(client_for(idp), refresh=Refresh(leeway=0.5)) as manager:
        await manager.get_token()
        default = await manager.get_token()  # now hot, usable until 9.5 s after issue
        await asyncio.sleep(0.6)  # less than 9 s of usable life left; still hot
        assert manager._hot is default
        auth = bearer_auth(integration, manager, origins=[idp.url], min_ttl=9.0)
        sent = await sent_authorizations(integration, auth, [("GET", idp.resource_url)])
        assert sent != [default.authorization]
        assert idp.token_requests() == 2


class Counting(TokenManager):
    """A manager whose ``get_token`` does more than the base class (here: counts)."""

    calls = 0

    async def get_token(
        self, scopes: str | Iterable[str] | None = None, *, min_ttl: float = 0.0
    ) -> Token:
        self.calls += 1
        return await super().get_token(scopes, min_ttl=min_ttl)


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_an_overridden_get_token_is_called_for_every_request(
    idp: DevAuthServer, integration: str
) -> None:
    async with Counting(client_for(idp)) as manager:
        await manager.get_token()
        await manager.get_token()  # hot: still, each request asks the overriding method
        assert manager._hot is not None
        auth = bearer_auth(integration, manager, origins=[idp.url])
        sent = await sent_authorizations(integration, auth, [("GET", idp.resource_url)] * 3)
        assert sent == [(await manager.get_token()).authorization] * 3
        assert manager.calls == 2 + 3 + 1


async def test_a_verdict_cached_for_one_sessions_base_url_is_not_another_sessions(
    tokens: TokenManager,
) -> None:
    """Without ``origins=``, aiohttp's allowed origin is the session's base_url: one
    middleware shared by two sessions keeps their answers apart."""
    auth = tokenfleet.aiohttp.BearerAuth(tokens)  # no origins=: each session's base_url
    async with Recorder() as first, Recorder() as second:
        for _ in range(3):
            for base, url in [(first, first.url), (second, first.url), (second, second.url)]:
                async with (
                    aiohttp.ClientSession(base.url, middlewares=[auth]) as session,
                    session.get(url + "/ok") as response,
                ):
                    assert response.status == 200
        token = (await tokens.get_token()).authorization
        assert first.authorizations == [token, None] * 3
        assert second.authorizations == [token] * 3


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_a_pinned_first_origin_stays_the_only_one(
    tokens: TokenManager, integration: str, caplog: pytest.LogCaptureFixture, url_reads: str
) -> None:
    async with Recorder() as api, Recorder() as other:
        auth = bearer_auth(integration, tokens)  # no origins=, no base_url: the first one
        requests = [("GET", api.url + "/ok"), ("GET", other.url + "/ok")]
        requests += [("GET", other_host(api.url + "/ok"))]
        sent = await sent_authorizations(integration, auth, requests * 3)
    assert sent == [(await tokens.get_token()).authorization, None, None] * 3
    assert sum("first origin asked for" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_a_refused_origin_is_explained_once_even_after_its_token_endpoint(
    idp: DevAuthServer, tokens: TokenManager, integration: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal is explained when it is decided, and cached: a request to the refused
    origin's token endpoint comes first and is not worth a word, the next one is."""
    caplog.set_level(logging.INFO, logger="tokenfleet")
    async with Recorder() as api:
        auth = bearer_auth(integration, tokens, origins=[api.url], allow_insecure_http=True)
        requests = [("POST", idp.token_url), ("GET", idp.resource_url), ("GET", api.url + "/ok")]
        sent = await sent_authorizations(integration, auth, requests * 3)
    assert sent == [None, None, (await tokens.get_token()).authorization] * 3
    said = [r for r in caplog.records if r.levelno == logging.INFO and "origins=" in r.message]
    assert len(said) == 1 and idp.url in said[0].message
