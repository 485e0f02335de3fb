"""One token request with ``ClientCredentials.fetch_token()``: no cache, no manager.

Reads the token endpoint and credentials from the environment::

    TOKENFLEET_TOKEN_URL=https://idp.example.com/oauth2/token \
    TOKENFLEET_CLIENT_ID=svc-orders TOKENFLEET_CLIENT_SECRET=... \
    python examples/fetch_once.py

With ``TOKENFLEET_TOKEN_URL`` unset, it starts the dev authorization server and uses it.
"""

from __future__ import annotations

import asyncio
import os

import tokenfleet
from tokenfleet.testing import DevAuthServer


async def fetch(token_url: str, client_id: str, client_secret: str) -> None:
    async with tokenfleet.ClientCredentials(
        token_url, client_id=client_id, client_secret=client_secret
    ) as client:
        token = await client.fetch_token()
    print(f"token: {token!r}")
    print(f"expires in: {token.expires_in:.0f} s")


async def main() -> None:
    token_url = os.environ.get("TOKENFLEET_TOKEN_URL")
    if token_url:
        client_id = os.environ["TOKENFLEET_CLIENT_ID"]
        await fetch(token_url, client_id, os.environ["TOKENFLEET_CLIENT_SECRET"])
        return
    print("TOKENFLEET_TOKEN_URL is not set: using the dev authorization server")
    async with DevAuthServer() as idp:
        await fetch(idp.token_url, idp.client_id, idp.client_secret)


if __name__ == "__main__":
    asyncio.run(main())
