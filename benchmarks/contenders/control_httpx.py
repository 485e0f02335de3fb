"""Control, not a contender: httpx with the shared settings and a fixed
``Authorization`` header fetched once up front (one token request), no auth library.
It shows what the HTTP client alone does under the same herd."""

from __future__ import annotations

from contenders import Contender, fixed_authorization
from contenders._http import httpx_client, httpx_get


class ControlHttpx(Contender):
    label = "httpx alone"

    async def open(self) -> None:
        self.http = httpx_client()
        self.headers: dict[str, str] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def prepare(self) -> None:
        self.headers = {"Authorization": await fixed_authorization(self.setup)}

    async def call(self) -> int:
        return await httpx_get(self.http, self.setup.resource_url, headers=self.headers)


CONTENDER = ControlHttpx
