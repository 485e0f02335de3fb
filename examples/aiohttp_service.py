"""An aiohttp microservice that calls a protected API through ``tokenfleet.aiohttp``.

The "orders" service below answers ``GET /orders/{id}`` by calling an upstream API
(the dev authorization server's protected resource) with one shared ``ClientSession``.
The session's ``BearerAuth`` middleware adds the token; the service code never sees it.

The script starts the dev authorization server, starts the service on a free port,
sends it 200 concurrent requests, revokes the token at the authorization server (as an
operator would after a leak), and sends 200 more. Every request succeeds: the upstream's
401s make the middleware drop the revoked token and retry with a new one, and the
authorization server sees two token requests in all.

    python examples/aiohttp_service.py
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

import tokenfleet
from tokenfleet.aiohttp import BearerAuth
from tokenfleet.testing import DevAuthServer

CALLERS = 200
UPSTREAM = web.AppKey("upstream", aiohttp.ClientSession)


def make_service(tokens: tokenfleet.TokenManager, api_url: str) -> web.Application:
    """The orders service: one upstream session for the app's lifetime, with the middleware."""
    app = web.Application()

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        # base_url also tells BearerAuth where the token may go: only to api_url's origin.
        middlewares = [BearerAuth(tokens, scopes=["orders:read"])]
        async with aiohttp.ClientSession(base_url=api_url, middlewares=middlewares) as session:
            app[UPSTREAM] = session
            yield

    async def get_order(request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        async with request.app[UPSTREAM].get("/resource/orders/" + order_id) as upstream:
            if upstream.status != 200:
                raise web.HTTPBadGateway(text=f"upstream answered {upstream.status}")
            claims = await upstream.json()
        return web.json_response({"order": order_id, "seen_by": claims["sub"]})

    app.cleanup_ctx.append(upstream_session)
    app.router.add_get("/orders/{order_id}", get_order)
    return app


async def call_service(base_url: str, count: int) -> list[int]:
    """``count`` concurrent GETs to the service; their status codes."""
    async with aiohttp.ClientSession(base_url) as http:

        async def one(i: int) -> int:
            async with http.get(f"/orders/{i}") as response:
                await response.read()
                return response.status

        return await asyncio.gather(*(one(i) for i in range(count)))


async def main() -> None:
    async with DevAuthServer() as idp:
        client = tokenfleet.ClientCredentials(
            idp.token_url,  # http is accepted only because the host is loopback
            client_id=idp.client_id,
            client_secret=idp.client_secret,
        )
        async with tokenfleet.TokenManager(client) as tokens:
            runner = web.AppRunner(make_service(tokens, idp.url), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            service_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            print(f"orders service listening on {service_url}")
            try:
                statuses = await call_service(service_url, CALLERS)
                idp.revoke((await tokens.get_token("orders:read")).access_token)
                print(f"token revoked at the authorization server after {CALLERS} requests")
                statuses += await call_service(service_url, CALLERS)
            finally:
                await runner.cleanup()

        ok = statuses.count(200)
        print(f"requests served: {len(statuses)}, {ok} answered 200 OK")
        print(f"token requests seen by the server: {idp.token_requests()}")


if __name__ == "__main__":
    asyncio.run(main())
