"""httpx-auth's ``OAuth2ClientCredentials`` (an ``httpx.Auth``) on an ``httpx.AsyncClient``.

Its token request is synchronous (an ``httpx.Client``), so while it runs the event loop
is blocked; its cache is process-global (``OAuth2.token_cache``), shared across
processes only through ``JsonTokenFileCache``, which has no cross-process lock.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import httpx_auth
from _support import TIMEOUT

from contenders import Contender
from contenders._http import httpx_client, httpx_get, httpx_limits


class HttpxAuth(Contender):
    label = "httpx-auth"
    sharing: ClassVar[dict[str, str]] = {"jsonfile": "JsonTokenFileCache"}

    async def open(self) -> None:
        if self.setup.share:
            httpx_auth.OAuth2.token_cache = httpx_auth.JsonTokenFileCache(self.setup.share)
        options: dict[str, Any] = {}
        if self.setup.margin is not None:
            options["early_expiry"] = self.setup.margin  # default 30 s
        self.token_http = httpx.Client(limits=httpx_limits(), timeout=TIMEOUT)
        self.auth = httpx_auth.OAuth2ClientCredentials(
            self.setup.token_url,
            client_id=self.setup.client_id,
            client_secret=self.setup.client_secret,
            client=self.token_http,
            timeout=TIMEOUT,
            **options,
        )
        self.http = httpx_client(auth=self.auth)
        self.bare = httpx_client()

    async def close(self) -> None:
        await self.http.aclose()
        await self.bare.aclose()
        self.token_http.close()

    async def call(self) -> int:
        return await httpx_get(self.http, self.setup.resource_url)

    async def bare_call(self, authorization: str) -> int:
        headers = {"Authorization": authorization}
        return await httpx_get(self.bare, self.setup.resource_url, headers=headers)

    async def get_token(self) -> object:
        # What its auth_flow does per request (the cache is reachable, not documented API).
        return httpx_auth.OAuth2.token_cache.get_token(
            self.auth.state,
            early_expiry=self.auth.early_expiry,
            on_missing_token=self.auth.request_new_token,
        )

    def instrument(self) -> None:
        cache = httpx_auth.OAuth2.token_cache
        cache.get_token = self._timed_sync(cache.get_token)


CONTENDER = HttpxAuth
