"""``tokenfleet token``: print an access token for shell use.

    curl -H "Authorization: Bearer $(tokenfleet token)" https://api.example.com/

This is the one place tokenfleet prints an access token, and only on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import msgspec

from .._manager.manager import TokenManager
from .._models import Token
from ..stores import store_from_url
from ._config import add_client_options, make_client, settings_from
from ._output import out

__all__ = ["add_parser", "run"]

_DESCRIPTION = """\
Print an access token (client credentials grant), for example:

  curl -H "Authorization: Bearer $(tokenfleet token)" https://api.example.com/

Configuration comes from flags or TOKENFLEET_* variables; the client secret only from
TOKENFLEET_CLIENT_SECRET or a file (TOKENFLEET_CLIENT_SECRET_FILE, --client-secret-file).
With --store (e.g. file://), repeated calls reuse one token until it is due for refresh.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``token``."""
    parser = commands.add_parser(
        "token",
        help="print an access token",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the whole token as JSON")
    parser.add_argument(
        "--min-ttl",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="a cached token must stay usable this long, else a new one is fetched",
    )
    add_client_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fetch (or reuse from the store) a token and print it."""
    token = asyncio.run(_get(args))
    out(token_json(token) if args.json else token.access_token)
    return 0


async def _get(args: argparse.Namespace) -> Token:
    settings = settings_from(args)
    client = make_client(settings)
    store = store_from_url(settings.store) if settings.store else None
    async with TokenManager(client, store=store) as manager:
        return await manager.get_token(min_ttl=args.min_ttl)


def token_json(token: Token) -> str:
    """The token as pretty JSON, with ``expires_in`` (seconds left, by this host's clock)."""
    document = msgspec.to_builtins(token)
    document["expires_in"] = round(token.expires_at - time.time())
    return json.dumps(document, indent=2)
