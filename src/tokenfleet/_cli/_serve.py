"""``tokenfleet serve``: the dev authorization server, and how to get a token from it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal

from ..testing import DevAuthServer
from ._output import duration_words, out

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    parser = commands.add_parser(
        "serve",
        help="run a dev authorization server on 127.0.0.1",
        description="Run tokenfleet's dev OAuth 2.0 authorization server (client credentials, "
        "JWT access tokens, JWKS, discovery) on 127.0.0.1 until Ctrl-C, and print a client id, "
        "a secret and the `tokenfleet token` command to paste. For development only.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument(
        "--lifetime", type=float, default=3600.0, metavar="SECONDS", help="token lifetime"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="token endpoint delay"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    server = DevAuthServer(token_lifetime=args.lifetime, latency=args.latency, port=args.port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server))
    return 0


async def _serve(server: DevAuthServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows loops: Ctrl-C still works
            loop.add_signal_handler(sig, stop.set)
    async with server:
        for line in banner(server):
            out(line)
        await stop.wait()
    out("stopped")


def banner(server: DevAuthServer) -> list[str]:
    """What the server is, and the commands to paste into another shell."""
    q = shlex.quote
    return [
        f"tokenfleet dev authorization server at {server.url} (Ctrl-C to stop)",
        f"  issuer:         {server.issuer}",
        f"  token endpoint: {server.token_url}",
        f"  client id:      {server.client_id}",
        f"  client secret:  {server.client_secret}",
        f"  token lifetime: {duration_words(server.token_lifetime)}",
        "",
        "Get a token from another shell:",
        "",
        f"  export TOKENFLEET_TOKEN_URL={q(server.token_url)}",
        f"  export TOKENFLEET_CLIENT_ID={q(server.client_id)}",
        f"  export TOKENFLEET_CLIENT_SECRET={q(server.client_secret)}",
        "  tokenfleet token",
        "",
        "  tokenfleet check                  # diagnose that configuration",
        "  tokenfleet token | tokenfleet decode -",
    ]
