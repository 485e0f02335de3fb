"""Scenario 9: the CPU time the auth layer adds to one request, not throughput.

``tokenfleet.aiohttp.BearerAuth`` is called as aiohttp calls a client middleware,
``middleware(request, handler)``, with one real ``aiohttp.ClientRequest`` and a stub
handler that answers a canned 200 (no network), beside a no-op middleware with the same
handler. ``tokenfleet.httpx.BearerAuth.async_auth_flow`` is driven as httpx drives it
(``__anext__``, then ``asend(response)``) beside a no-op ``httpx.Auth``. The token is
warm (a real ``ClientCredentials`` against the dev server). CPU time of this thread,
interleaved rounds, medians.

The request goes to ``https://api.example.com/orders``, an API on another origin than
the authorization server (the common deployment; the stub handler never connects). Two
more cases show what else a request can cost: one to the token endpoint's own origin
(the dev server's plain http on loopback: a tuple key, and each path checked against the
token endpoint's, one dict lookup once seen), and a
no-op middleware written as a class, aiohttp's own form (``DigestAuthMiddleware``): an
instance's ``__call__`` costs more to call than a function, and ``BearerAuth`` is one.
Rounds are short (a few thousand calls per case), because this machine's speed changes
for seconds at a time and a round's cases are compared with each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
from _support import dev_server, median
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import tokenfleet
import tokenfleet.aiohttp
import tokenfleet.httpx


class _Canned:
    """What the middleware reads of a response: a 200 with no headers of interest."""

    status = 200
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))

    def release(self) -> None:  # pragma: no cover - a 200 is never released
        pass


async def _cpu_ns(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """CPU nanoseconds of this thread per ``await call()``."""
    started = time.thread_time_ns()
    for _ in range(calls):
        await call()
    return (time.thread_time_ns() - started) / calls


Case = Callable[[], Awaitable[object]]


class _NoopMiddleware:
    """A no-op middleware written as aiohttp writes its own (a class with ``__call__``)."""

    async def __call__(self, sent: Any, next_handler: Any) -> Any:
        return await next_handler(sent)


def _aiohttp_cases(
    auth: tokenfleet.aiohttp.BearerAuth, url: str, authorization: str
) -> tuple[Case, Case, Case, Case]:
    request = aiohttp.ClientRequest("GET", URL(url), loop=asyncio.get_running_loop())
    template = request.headers.copy()
    canned = _Canned()
    noop_class = _NoopMiddleware()

    async def handler(sent: Any) -> Any:
        return canned

    async def noop(sent: Any, next_handler: Any) -> Any:
        return await next_handler(sent)

    async def fixed(sent: Any, next_handler: Any) -> Any:  # the least any auth layer does
        if aiohttp.hdrs.AUTHORIZATION not in sent.headers:
            sent.headers[aiohttp.hdrs.AUTHORIZATION] = authorization
        return await next_handler(sent)

    # Every call starts from the same headers, made the same way in every case (as for
    # httpx below): removing the header a layer set costs more than removing a missing
    # one (~100-170 ns in multidict 6), and that is the harness's cost, not the layer's.
    async def with_auth() -> object:
        request.headers = template.copy()
        return await auth(request, handler)

    async def without() -> object:
        request.headers = template.copy()
        return await noop(request, handler)

    async def with_fixed() -> object:
        request.headers = template.copy()
        return await fixed(request, handler)

    async def with_noop_class() -> object:
        request.headers = template.copy()
        return await noop_class(request, handler)

    return with_auth, without, with_fixed, with_noop_class


class _FixedHeader(httpx.Auth):
    """The least any auth layer does: check for an ``Authorization`` header, set one."""

    def __init__(self, authorization: str) -> None:
        self.authorization = authorization

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        if "Authorization" not in request.headers:
            request.headers["Authorization"] = self.authorization
        yield request


def _httpx_cases(
    auth: tokenfleet.httpx.BearerAuth, url: str, authorization: str
) -> tuple[Case, Case, Case]:
    request = httpx.Request("GET", url)
    response = httpx.Response(200, request=request)
    noop = httpx.Auth()
    fixed = _FixedHeader(authorization)

    template = request.headers.raw

    async def drive(flow_of: Callable[[httpx.Request], Any]) -> object:
        # Every call starts from the same headers, made the same way in every case:
        # popping the header a layer set (~1.6 µs in httpx 0.28) costs more than popping
        # a missing one (~1.0 µs), and that is the harness's cost, not the layer's.
        request.headers = httpx.Headers(template)
        flow = flow_of(request)  # as httpx.AsyncClient._send_handling_auth does
        sent = await flow.__anext__()
        with contextlib.suppress(StopAsyncIteration):
            await flow.asend(response)
        return sent

    async def with_auth() -> object:
        return await drive(auth.async_auth_flow)

    async def without() -> object:
        return await drive(noop.async_auth_flow)

    async def with_fixed() -> object:
        return await drive(fixed.async_auth_flow)

    return with_auth, without, with_fixed


API = "https://api.example.com"  # another origin than the authorization server's


async def run(latency: float, calls: int = 4_000, rounds: int = 41) -> dict[str, Any]:
    with dev_server(latency=latency) as server:
        client = tokenfleet.ClientCredentials(
            server.token_url, client_id=server.client_id, client_secret=server.client_secret
        )
        same_origin = server.info["issuer"] + "/resource"  # the token endpoint's origin
        async with tokenfleet.TokenManager(client) as manager:
            authorization = (await manager.get_token()).authorization
            origins = [API, server.url]
            aiohttp_auth = tokenfleet.aiohttp.BearerAuth(manager, origins=origins)
            httpx_auth = tokenfleet.httpx.BearerAuth(manager, origins=origins)
            with_auth, without, with_fixed, with_noop_class = _aiohttp_cases(
                aiohttp_auth, API + "/orders", authorization
            )
            httpx_auth_, httpx_noop, httpx_fixed = _httpx_cases(
                httpx_auth, API + "/orders", authorization
            )

            async def get_token() -> object:
                return await manager.get_token()

            cases: dict[str, Case] = {
                "get_token": get_token,
                "aiohttp_auth": with_auth,
                "aiohttp_noop": without,
                "aiohttp_fixed": with_fixed,
                "aiohttp_noop_class": with_noop_class,
                "aiohttp_same_origin": _aiohttp_cases(aiohttp_auth, same_origin, authorization)[0],
                "httpx_auth": httpx_auth_,
                "httpx_noop": httpx_noop,
                "httpx_fixed": httpx_fixed,
                "httpx_same_origin": _httpx_cases(httpx_auth, same_origin, authorization)[0],
            }
            for call in cases.values():  # warm up every path (first-use logs, caches)
                await _cpu_ns(call, 1000)
            columns: dict[str, list[float]] = {name: [] for name in cases}
            order = list(cases.items())
            for number in range(rounds):  # interleaved; the order alternates per round
                for name, call in order if number % 2 == 0 else order[::-1]:
                    columns[name].append(await _cpu_ns(call, calls))
    result = {f"{name}_ns": median(found) for name, found in columns.items()}

    def added(layer: str, base: str) -> float:
        """The median over rounds of (layer - base) in the same round."""
        pairs = zip(columns[layer], columns[base], strict=True)
        return median([a - b for a, b in pairs])

    for name in ("aiohttp", "httpx"):
        result[f"{name}_added_ns"] = added(f"{name}_auth", f"{name}_noop")
        result[f"{name}_fixed_added_ns"] = added(f"{name}_fixed", f"{name}_noop")
        result[f"{name}_over_fixed_ns"] = added(f"{name}_auth", f"{name}_fixed")
        result[f"{name}_same_origin_added_ns"] = added(f"{name}_same_origin", f"{name}_noop")
        rounds_of = (columns[f"{name}_auth"], columns[f"{name}_noop"], columns["get_token"])
        per_get_token = [(a - b) / g for a, b, g in zip(*rounds_of, strict=True)]
        result[f"{name}_added_per_get_token"] = median(per_get_token)
    result["aiohttp_class_call_ns"] = added("aiohttp_noop_class", "aiohttp_noop")
    result["aiohttp_over_class_ns"] = added("aiohttp_auth", "aiohttp_noop_class")
    result["calls"] = calls
    result["rounds"] = rounds
    return result
