"""Scenario 9: the CPU time the auth layer adds to one request, not throughput.

``tokenfleet.aiohttp.BearerAuth`` is called as aiohttp calls a client middleware,
``middleware(request, handler)``, with one real ``aiohttp.ClientRequest`` and a stub
handler that answers a canned 200 (no network), beside a no-op middleware with the same
handler. ``tokenfleet.httpx.BearerAuth.async_auth_flow`` is driven as httpx drives it
(``__anext__``, then ``asend(response)``) beside a no-op ``httpx.Auth``. The token is
warm (a real ``ClientCredentials`` against the dev server). CPU time of this thread,
interleaved rounds, medians.
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


def _aiohttp_cases(
    auth: tokenfleet.aiohttp.BearerAuth, url: str, authorization: str
) -> tuple[Case, Case, Case]:
    request = aiohttp.ClientRequest("GET", URL(url), loop=asyncio.get_running_loop())
    template = request.headers.copy()
    canned = _Canned()

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

    return with_auth, without, with_fixed


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


async def run(latency: float, calls: int = 20_000, rounds: int = 9) -> dict[str, Any]:
    with dev_server(latency=latency) as server:
        client = tokenfleet.ClientCredentials(
            server.token_url, client_id=server.client_id, client_secret=server.client_secret
        )
        resource = server.info["issuer"] + "/resource"
        async with tokenfleet.TokenManager(client) as manager:
            authorization = (await manager.get_token()).authorization
            origins = [server.url]  # the resource shares its origin with the token endpoint
            cases = {
                "aiohttp": _aiohttp_cases(
                    tokenfleet.aiohttp.BearerAuth(manager, origins=origins),
                    resource,
                    authorization,
                ),
                "httpx": _httpx_cases(
                    tokenfleet.httpx.BearerAuth(manager, origins=origins), resource, authorization
                ),
            }

            async def get_token() -> object:
                return await manager.get_token()

            columns: dict[str, list[float]] = {"get_token_ns": []}
            kinds = ("auth", "noop", "fixed")
            for name in cases:
                for kind in kinds:
                    columns[f"{name}_{kind}_ns"] = []
            for case in cases.values():  # warm up both paths (first-use logs, caches)
                for call in case:
                    await _cpu_ns(call, 1000)
            for number in range(rounds):  # interleaved; the order alternates per round
                columns["get_token_ns"].append(await _cpu_ns(get_token, calls))
                for name, case in cases.items():
                    order = list(zip(case, kinds, strict=True))
                    for call, kind in order if number % 2 == 0 else order[::-1]:
                        columns[f"{name}_{kind}_ns"].append(await _cpu_ns(call, calls))
    result = {name: median(found) for name, found in columns.items()}
    for name in cases:  # added cost: the median over rounds of (layer - base) in that round
        for kind, base, column in (
            ("auth", "noop", "added_ns"),
            ("fixed", "noop", "fixed_added_ns"),
            ("auth", "fixed", "over_fixed_ns"),  # above the floor any auth layer pays
        ):
            found, under = columns[f"{name}_{kind}_ns"], columns[f"{name}_{base}_ns"]
            result[f"{name}_{column}"] = median([a - b for a, b in zip(found, under, strict=True)])
    result["calls"] = calls
    result["rounds"] = rounds
    return result
