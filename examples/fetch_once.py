"""One token request with ``ClientCredentials.fetch_token()``: no cache, no manager.

Reads the token endpoint and credentials from the environment, as the ``tokenfleet``
command does (``ClientCredentials.from_env``: ``TOKENFLEET_CLIENT_SECRET_FILE``,
``TOKENFLEET_AUTH_METHOD``, ``TOKENFLEET_SCOPES``, ... too)::

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


async def fetch(client: tokenfleet.ClientCredentials) -> None:
    async with client:
        token = await client.fetch_token()
    print(f"token: {token!r}")
    print(f"expires in: {token.expires_in:.0f} s")


async def main() -> None:
    if os.environ.get("TOKENFLEET_TOKEN_URL") or os.environ.get("TOKENFLEET_ISSUER"):
        await fetch(tokenfleet.ClientCredentials.from_env())
        return
    print("TOKENFLEET_TOKEN_URL is not set: using the dev authorization server")
    async with DevAuthServer() as idp:
        await fetch(
            tokenfleet.ClientCredentials(
                idp.token_url, client_id=idp.client_id, client_secret=idp.client_secret
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
