"""tokenfleet over httpx: the same ``TokenManager`` and ``tokenfleet.httpx.BearerAuth``."""

from __future__ import annotations

import tokenfleet.httpx
from contenders import Contender
from contenders._http import httpx_client, httpx_get
from contenders.tokenfleet_aiohttp import manager


class TokenfleetHttpx(Contender):
    label = "tokenfleet + httpx"
    no_margin = "its own policy: refresh ahead at 80 % of the lifetime (default settings)"
    no_get_token = "same TokenManager.get_token() as tokenfleet + aiohttp"  # noqa: S105

    async def open(self) -> None:
        self.manager = manager(self.setup)
        await self.manager.__aenter__()
        auth = tokenfleet.httpx.BearerAuth(self.manager, origins=[self.setup.url])
        self.http = httpx_client(auth=auth)
        self.bare = httpx_client()

    async def close(self) -> None:
        await self.http.aclose()
        await self.bare.aclose()
        await self.manager.aclose()

    async def call(self) -> int:
        return await httpx_get(self.http, self.setup.resource_url)

    async def bare_call(self, authorization: str) -> int:
        headers = {"Authorization": authorization}
        return await httpx_get(self.bare, self.setup.resource_url, headers=headers)

    def instrument(self) -> None:
        self.manager.get_token = self._timed(self.manager.get_token)  # type: ignore[method-assign]


CONTENDER = TokenfleetHttpx
