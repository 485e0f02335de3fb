"""Quickstart: 1,000 concurrent callers, one token request.

Starts the dev authorization server in this process, points a ``ClientCredentials``
at it, wraps that in a ``TokenManager`` and asks for a token from 1,000 coroutines at
once. The server sees one token request.

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio

import tokenfleet
from tokenfleet.testing import DevAuthServer

CALLERS = 1_000


async def main() -> None:
    async with DevAuthServer() as idp:
        client = tokenfleet.ClientCredentials(
            idp.token_url,  # http is accepted only because the host is loopback
            client_id=idp.client_id,
            client_secret=idp.client_secret,
            scopes=["orders:read"],
        )
        async with tokenfleet.TokenManager(client) as tokens:
            results = await asyncio.gather(*(tokens.get_token() for _ in range(CALLERS)))

        assert all(token is results[0] for token in results)
        print(f"callers: {CALLERS}")
        print(f"token requests seen by the server: {idp.token_requests()}")
        print(f"token: {results[0]!r}")  # the repr shows a fingerprint, never the token


if __name__ == "__main__":
    asyncio.run(main())
