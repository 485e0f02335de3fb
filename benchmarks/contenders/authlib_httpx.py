"""Authlib's ``AsyncOAuth2Client`` (an ``httpx.AsyncClient`` subclass), as its docs show
for the client-credentials grant: ``token_endpoint=`` and ``grant_type=`` so that an
expired token is fetched again automatically, and one ``fetch_token()`` before the first
request (without it, a request raises ``MissingTokenError``)."""

from __future__ import annotations

from typing import Any

from _support import TIMEOUT
from authlib.integrations.httpx_client import AsyncOAuth2Client

from contenders import Contender
from contenders._http import httpx_client, httpx_get, httpx_limits


class AuthlibHttpx(Contender):
    label = "Authlib (httpx)"

    async def open(self) -> None:
        options: dict[str, Any] = {}
        if self.setup.margin is not None:
            options["leeway"] = self.setup.margin  # default 60 s
        self.http = AsyncOAuth2Client(
            self.setup.client_id,
            self.setup.client_secret,
            token_endpoint=self.setup.token_url,
            grant_type="client_credentials",
            limits=httpx_limits(),
            timeout=TIMEOUT,
            **options,
        )
        self.bare = httpx_client()

    async def close(self) -> None:
        await self.http.aclose()
        await self.bare.aclose()

    async def prepare(self) -> None:
        await self.http.fetch_token()

    async def call(self) -> int:
        return await httpx_get(self.http, self.setup.resource_url)

    async def bare_call(self, authorization: str) -> int:
        headers = {"Authorization": authorization}
        return await httpx_get(self.bare, self.setup.resource_url, headers=headers)

    async def get_token(self) -> object:
        # What request() does before each request: check the expiry under its lock.
        await self.http.ensure_active_token(self.http.token)
        return self.http.token["access_token"]

    def instrument(self) -> None:
        self.http.ensure_active_token = self._timed(self.http.ensure_active_token)


CONTENDER = AuthlibHttpx
