"""``tokenfleet token``: print an access token for shell use.

    curl -H "Authorization: Bearer $(tokenfleet token)" https://api.example.com/

This is the one place tokenfleet prints an access token, and only on stdout.

With ``--dpop`` (RFC 9449) the token is bound to a key made for this run, and a ready
proof for ``--method``/``--url`` is printed with it, as two header lines for
``curl -H @-``, or (``--curl``) as a whole curl command. A proof is good for one request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import time

import msgspec

from .._client.credentials import ClientCredentials
from .._client.env import client_kwargs
from .._exceptions import ConfigurationError
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

DPoP (RFC 9449): --dpop --url URL [--method GET] prints the two headers of one request:

  tokenfleet token --dpop --url https://api.example.com/x | curl -H @- https://api.example.com/x
  tokenfleet token --dpop --url https://api.example.com/x --curl    # the whole command
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
    dpop = parser.add_argument_group("DPoP (RFC 9449)")
    dpop.add_argument("--dpop", action="store_true", help="get a DPoP-bound token and a proof")
    dpop.add_argument("--url", help="the URL the proof is for (query and fragment ignored)")
    dpop.add_argument("--method", default="GET", help="the HTTP method the proof is for")
    dpop.add_argument("--curl", action="store_true", help="print a curl command line")
    add_client_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fetch (or reuse from the store) a token and print it."""
    if args.dpop and not args.url:
        raise ConfigurationError(
            "--dpop needs --url (and --method, default GET): a proof is per request"
        )
    token = asyncio.run(_get(args))
    if args.json:
        out(token_json(token))
    elif token.dpop_key is not None and args.url:
        out(dpop_lines(token, args.method, args.url, curl=args.curl))
    else:
        out(token.access_token)
    return 0


def dpop_lines(token: Token, method: str, url: str, *, curl: bool) -> str:
    """``Authorization`` and ``DPoP`` headers for one request, or a curl command using them."""
    headers = [f"Authorization: {token.authorization}", f"DPoP: {token.dpop_proof(method, url)}"]
    if not curl:
        return "\n".join(headers)
    parts = ["curl", "-X", method.upper(), *(f"-H {shlex.quote(h)}" for h in headers)]
    return " ".join([*parts, shlex.quote(url)])


async def _get(args: argparse.Namespace) -> Token:
    settings = settings_from(args)
    client = ClientCredentials(**client_kwargs(settings), dpop=True) if args.dpop else None
    client = client or make_client(settings)
    store = store_from_url(settings.store) if settings.store else None
    # fail_open=False: with --store given and the store down, say so (exit 4) rather than
    # print a token that silently bypassed the cache the user asked for.
    async with TokenManager(client, store=store, fail_open=False) as manager:
        return await manager.get_token(min_ttl=args.min_ttl)


def token_json(token: Token) -> str:
    """The token as pretty JSON, with ``expires_in`` (seconds left, by this host's clock)."""
    document = msgspec.to_builtins(msgspec.structs.replace(token, dpop_key=None))
    del document["dpop_key"]  # the private key is never printed; its thumbprint is public
    if token.dpop_key is not None:
        document["dpop_jkt"] = token.dpop_key.thumbprint
    document["expires_in"] = round(token.expires_at - time.time())
    return json.dumps(document, indent=2)
