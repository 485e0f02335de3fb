"""The class most guides show: keep the token and its expiry; if it is (nearly) expired,
POST for a new one. No lock, no refresh ahead, no sharing."""

from __future__ import annotations

import time

import aiohttp

from contenders import Contender
from contenders._http import aiohttp_get, aiohttp_session


class GuideTokenClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        token_url: str,
        client_id: str,
        client_secret: str,
        margin: float = 30.0,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._auth = aiohttp.BasicAuth(client_id, client_secret)
        self._margin = margin
        self._token: str | None = None
        self._expires_at = 0.0

    async def get_token(self) -> str:
        if self._token is None or time.time() >= self._expires_at - self._margin:
            async with self._http.post(
                self._token_url, data={"grant_type": "client_credentials"}, auth=self._auth
            ) as response:
                response.raise_for_status()
                body = await response.json()
            self._token = body["access_token"]
            self._expires_at = time.time() + float(body["expires_in"])
        return self._token


class Handwritten(Contender):
    label = "hand-written (aiohttp)"

    async def open(self) -> None:
        self.http = aiohttp_session()
        margin = 30.0 if self.setup.margin is None else self.setup.margin
        self.tokens = GuideTokenClient(
            self.http,
            self.setup.token_url,
            self.setup.client_id,
            self.setup.client_secret,
            margin=margin,
        )

    async def close(self) -> None:
        await self.http.close()

    async def call(self) -> int:
        headers = {aiohttp.hdrs.AUTHORIZATION: f"Bearer {await self.tokens.get_token()}"}
        return await aiohttp_get(self.http, self.setup.resource_url, headers=headers)

    async def bare_call(self, authorization: str) -> int:
        headers = {aiohttp.hdrs.AUTHORIZATION: authorization}
        return await aiohttp_get(self.http, self.setup.resource_url, headers=headers)

    async def get_token(self) -> object:
        return await self.tokens.get_token()

    def instrument(self) -> None:
        self.tokens.get_token = self._timed(self.tokens.get_token)  # type: ignore[method-assign]


CONTENDER = Handwritten
