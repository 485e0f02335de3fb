"""Control, not a contender: aiohttp with the shared settings and a fixed
``Authorization`` header fetched once up front (one token request), no auth library.
It shows what the HTTP client alone does under the same herd."""

from __future__ import annotations

import aiohttp

from contenders import Contender, fixed_authorization
from contenders._http import aiohttp_get, aiohttp_session


class ControlAiohttp(Contender):
    label = "aiohttp alone"

    async def open(self) -> None:
        self.http = aiohttp_session()
        self.headers: dict[str, str] = {}

    async def close(self) -> None:
        await self.http.close()

    async def prepare(self) -> None:
        self.headers = {aiohttp.hdrs.AUTHORIZATION: await fixed_authorization(self.setup)}

    async def call(self) -> int:
        return await aiohttp_get(self.http, self.setup.resource_url, headers=self.headers)


CONTENDER = ControlAiohttp
