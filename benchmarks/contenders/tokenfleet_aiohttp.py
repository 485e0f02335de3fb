"""tokenfleet: a ``TokenManager`` and the ``tokenfleet.aiohttp.BearerAuth`` middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import aiohttp
from _support import TIMEOUT

import tokenfleet
import tokenfleet.aiohttp
from contenders import Contender
from contenders._http import aiohttp_get, aiohttp_session


def manager(setup: Any) -> tokenfleet.TokenManager:
    """Defaults everywhere: leeway, refresh at 80 % of the lifetime, MemoryStore unless
    the fleet scenario shares a FileStore or RedisStore."""
    client = tokenfleet.ClientCredentials(
        setup.token_url,
        client_id=setup.client_id,
        client_secret=setup.client_secret,
        timeout=TIMEOUT,
    )
    store = tokenfleet.store_from_url(setup.share) if setup.share else None
    return tokenfleet.TokenManager(client, store=store)


class TokenfleetAiohttp(Contender):
    label = "tokenfleet + aiohttp"
    sharing: ClassVar[dict[str, str]] = {"file": "FileStore", "redis": "RedisStore"}
    no_margin = "its own policy: refresh ahead at 80 % of the lifetime (default settings)"

    async def open(self) -> None:
        self.manager = manager(self.setup)
        await self.manager.__aenter__()
        auth = tokenfleet.aiohttp.BearerAuth(self.manager, origins=[self.setup.url])
        self.http = aiohttp_session(middlewares=[auth])
        self.bare = aiohttp_session()

    async def close(self) -> None:
        await self.http.close()
        await self.bare.close()
        await self.manager.aclose()

    async def call(self) -> int:
        return await aiohttp_get(self.http, self.setup.resource_url)

    async def bare_call(self, authorization: str) -> int:
        headers = {aiohttp.hdrs.AUTHORIZATION: authorization}
        return await aiohttp_get(self.bare, self.setup.resource_url, headers=headers)

    async def get_token(self) -> object:
        return await self.manager.get_token()

    def library_get_token(self) -> Callable[[], Awaitable[object]]:
        """The library's own call, unwrapped (scenario 4 compares it with the floor)."""
        return self.manager.get_token

    def instrument(self) -> None:
        self.manager.get_token = self._timed(self.manager.get_token)  # type: ignore[method-assign]


CONTENDER = TokenfleetAiohttp
