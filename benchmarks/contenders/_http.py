"""HTTP clients built with the shared settings (``_support.POOL``, ``_support.TIMEOUT``)."""

from __future__ import annotations

from typing import Any

import aiohttp
from _support import POOL, TIMEOUT


def aiohttp_session(**kwargs: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=POOL),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT),
        **kwargs,
    )


def httpx_limits() -> Any:
    import httpx

    return httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)


def httpx_client(**kwargs: Any) -> Any:
    import httpx

    return httpx.AsyncClient(limits=httpx_limits(), timeout=TIMEOUT, **kwargs)


async def aiohttp_get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> int:
    async with session.get(url, **kwargs) as response:
        await response.read()
        return response.status


async def httpx_get(client: Any, url: str, **kwargs: Any) -> int:
    response = await client.get(url, **kwargs)
    return int(response.status_code)
