"""``tokenfleet serve``: the dev authorization server, and how to get a token from it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import secrets
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .._exceptions import ConfigurationError
from ..testing import DevAuthServer
from ._output import duration_words, out

__all__ = ["add_parser", "run"]


_DEFAULT_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    parser = commands.add_parser(
        "serve",
        help="run a dev authorization server on 127.0.0.1",
        description="Run tokenfleet's dev OAuth 2.0 authorization server (client credentials, "
        "JWT access tokens, JWKS, discovery, a protected resource) on 127.0.0.1 until Ctrl-C, "
        "and print a client id, a secret and the commands to paste. For development only.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument(
        "--lifetime", type=float, default=3600.0, metavar="SECONDS", help="token lifetime"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="token endpoint delay"
    )
    parser.add_argument(
        "--client-secret-file",
        metavar="PATH",
        help="keep the client secret in this file (created with a fresh secret, mode 0600, "
        "if missing), so pasted exports survive restarts",
    )
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="ID=SCOPE[,SCOPE]",
        help="register another client (same secret) allowed only these scopes; repeatable. "
        "Asking it for another scope answers invalid_scope",
    )
    parser.add_argument(
        "--dpop-nonces",
        action="store_true",
        help="DPoP (RFC 9449): demand server nonces at the token endpoint and the resource",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    if not 0 <= args.port <= 65535:
        raise ConfigurationError(
            f"--port {args.port} is out of range: use 1-65535, or leave --port out for a free port"
        )
    server = DevAuthServer(token_lifetime=args.lifetime, latency=args.latency, port=args.port)
    server.dpop.nonce_at_token = server.dpop.nonce_at_resource = args.dpop_nonces
    secret_note = _stable_secret(server, args.client_secret_file)
    extra = [_extra_client(server, spec) for spec in args.client]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server, args.port, secret_note, extra))
    return 0


def _stable_secret(server: DevAuthServer, path: str | None) -> str:
    """Read (or create) the secret file and give the default client that secret."""
    if path is None:
        return "fresh; --client-secret-file PATH keeps one across restarts"
    file = Path(path).expanduser()
    try:
        if not file.exists():
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
        secret = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"--client-secret-file {path!r}: cannot use it ({exc})") from None
    if len(secret) < 32:
        raise ConfigurationError(
            f"--client-secret-file {path!r}: the secret is shorter than 32 characters; "
            "delete the file to get a fresh one"
        )
    server.client_secret = secret
    server.register_client(server.client_id, secret, auth_methods=_DEFAULT_METHODS)
    return f"from {file}"


def _extra_client(server: DevAuthServer, spec: str) -> str:
    client_id, sep, scopes = spec.partition("=")
    allowed = scopes.replace(",", " ").split()
    if not client_id or not sep or not allowed:
        raise ConfigurationError(f"--client {spec!r}: use ID=SCOPE[,SCOPE], e.g. svc-read=a:read")
    server.register_client(
        client_id, server.client_secret, auth_methods=_DEFAULT_METHODS, scopes=allowed
    )
    return f"{client_id} (scopes: {' '.join(allowed)}; same secret)"


async def _serve(server: DevAuthServer, port: int, secret_note: str, extra: list[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows loops: Ctrl-C still works
            loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc})"
        raise ConfigurationError(
            f"port {port} {reason}: pick another with --port, or leave --port out for a free one"
        ) from None
    try:
        for line in banner(server, secret_note, extra):
            out(line)
        await stop.wait()
    finally:
        await server.stop()
    out("stopped")


def tokenfleet_command() -> str:
    """How to run tokenfleet from a shell where this venv is not on PATH."""
    script = Path(sys.executable).with_name("tokenfleet")
    if script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m tokenfleet"


def banner(server: DevAuthServer, secret_note: str = "", extra: Sequence[str] = ()) -> list[str]:
    """What the server is, and the commands to paste into another shell."""
    q = shlex.quote
    run = tokenfleet_command()
    lines = [
        f"tokenfleet dev authorization server at {server.url} (Ctrl-C to stop)",
        f"  issuer:             {server.issuer}",
        f"  token endpoint:     {server.token_url}",
        f"  protected resource: {server.resource_url}  (API_URL: accepts this server's tokens)",
        f"  client id:          {server.client_id}",
        f"  client secret:      {server.client_secret}  ({secret_note or 'fresh'})",
    ]
    lines += [f"  more clients:       {client}" for client in extra]
    return [
        *lines,
        f"  token lifetime:     {duration_words(server.token_lifetime)}",
        "",
        "Get a token from another shell:",
        "",
        f"  export TOKENFLEET_TOKEN_URL={q(server.token_url)}",
        f"  export TOKENFLEET_CLIENT_ID={q(server.client_id)}",
        f"  export TOKENFLEET_CLIENT_SECRET={q(server.client_secret)}",
        f"  export API_URL={q(server.resource_url)}",
        f"  {run} token",
        "",
        f"  {run} check                  # diagnose that configuration",
        f"  {run} token | {run} decode -",
    ]
