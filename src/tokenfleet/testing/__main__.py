"""Run the dev authorization server until Ctrl-C or SIGTERM.

Usage: ``python -m tokenfleet.testing [--port N] [--lifetime S] [--latency S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from ._server import DevAuthServer


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tokenfleet.testing",
        description="A small OAuth 2.0 authorization server (client credentials) for development.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="token lifetime, seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="token endpoint delay, seconds")
    parser.add_argument("--issuer-path", default="", help="issuer path, e.g. /tenant1")
    return parser.parse_args(argv)


async def serve(server: DevAuthServer) -> None:
    """Run ``server`` and print how to reach it, until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows event loops; Ctrl-C then ends asyncio.run instead.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        print(f"url:           {server.url}")
        print(f"issuer:        {server.issuer}")
        print(f"token_url:     {server.token_url}")
        print(f"jwks_url:      {server.jwks_url}")
        print(f"metadata:      {server.metadata_url}")
        print(f"client_id:     {server.client_id}")
        print(f"client_secret: {server.client_secret}")
        print("Ctrl-C to stop", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """The command line entry point."""
    args = _parse_args(argv)
    server = DevAuthServer(
        token_lifetime=args.lifetime,
        latency=args.latency,
        port=args.port,
        issuer_path=args.issuer_path,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(server))


if __name__ == "__main__":
    main()
