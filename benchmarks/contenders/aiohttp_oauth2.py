"""aiohttp-oauth2-client: a ``ClientCredentialsGrant`` and its ``OAuth2Middleware``, as
its README shows. The grant makes its own ``aiohttp.ClientSession()`` for token
requests (aiohttp defaults: pool 100, 5-minute timeout; not configurable) and treats a
token as expired 30 s before ``expires_at`` (hard-coded)."""

from __future__ import annotations

import aiohttp
from aiohttp_oauth2_client.grant.client_credentials import ClientCredentialsGrant
from aiohttp_oauth2_client.middleware import OAuth2Middleware

from contenders import Contender
from contenders._http import aiohttp_get, aiohttp_session


class AiohttpOAuth2(Contender):
    label = "aiohttp-oauth2-client"
    no_margin = "the 30 s early expiry is hard-coded: with a 2 s token every call fetches"

    async def open(self) -> None:
        self.grant = ClientCredentialsGrant(
            token_url=self.setup.token_url,
            client_id=self.setup.client_id,
            client_secret=self.setup.client_secret,
        )
        await self.grant.__aenter__()
        self.http = aiohttp_session(middlewares=(OAuth2Middleware(self.grant),))
        self.bare = aiohttp_session()

    async def close(self) -> None:
        await self.http.close()
        await self.bare.close()
        await self.grant.close()

    async def call(self) -> int:
        return await aiohttp_get(self.http, self.setup.resource_url)

    async def bare_call(self, authorization: str) -> int:
        headers = {aiohttp.hdrs.AUTHORIZATION: authorization}
        return await aiohttp_get(self.bare, self.setup.resource_url, headers=headers)

    async def get_token(self) -> object:
        return await self.grant.prepare_headers()  # what the middleware awaits per request

    def instrument(self) -> None:
        self.grant.prepare_headers = self._timed(self.grant.prepare_headers)


CONTENDER = AiohttpOAuth2
