"""``tokenfleet decode TOKEN|-``: a JWT's header and claims, and when it expires.

Nothing is verified: this reads what the token says, as a debugging aid. An opaque
token (not a JWT) can only be read by its authorization server (introspection, RFC 7662).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any, TypeGuard

import jwt

from .._exceptions import ConfigurationError
from ._output import ago_or_in, out

__all__ = ["add_parser", "decode", "run"]

_READ_OPTIONS = {
    "verify_signature": False,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


class OpaqueToken(ConfigurationError):
    """The token is not a JWT."""

    cli_kind = "not a JWT"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``decode``."""
    parser = commands.add_parser(
        "decode",
        help="show a JWT's header, claims and expiry (no verification)",
        description="Show a JWT access token's header and claims, and when it expires. "
        "The signature is NOT verified. Exit code 2 if the token is not a JWT.",
    )
    parser.add_argument("token", metavar="TOKEN|-", help="the token, or - to read it from stdin")
    parser.add_argument("--json", action="store_true", help="print {header, claims} as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Decode and show the token."""
    raw = sys.stdin.read() if args.token == "-" else args.token  # noqa: S105 - stdin marker
    header, claims = decode(raw)
    if args.json:
        out(json.dumps({"header": header, "claims": claims}, indent=2, sort_keys=True))
        return 0
    out("header:")
    out(json.dumps(header, indent=2, sort_keys=True))
    out("claims:")
    out(json.dumps(claims, indent=2, sort_keys=True))
    for line in summary(header, claims, time.time()):
        out(line)
    return 0


def decode(raw: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(header, claims)`` of a JWT, unverified; ``Bearer `` prefixes are dropped.

    Raises:
        OpaqueToken: it is not a JWT (the message never contains the token).
    """
    token = raw.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise OpaqueToken("no token given (empty input)")
    if token.count(".") != 2:
        raise OpaqueToken(
            "this is an opaque token: only its authorization server can read it "
            "(token introspection, RFC 7662)"
        )
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options=_READ_OPTIONS)  # type: ignore[arg-type]
    except jwt.PyJWTError as exc:
        raise OpaqueToken(
            f"this looks like a JWT but cannot be decoded ({type(exc).__name__})"
        ) from None
    return dict(header), dict(claims)


def summary(header: dict[str, Any], claims: dict[str, Any], now: float) -> list[str]:
    """The lines below the JSON: what kind of token, issued when, expires when."""
    lines = [f"type:    {kind(header)}"]
    for claim, label in (("iat", "issued: "), ("nbf", "valid from:")):
        when = claims.get(claim)
        if _is_time(when):
            lines.append(f"{label:<8} {_utc(when)} ({ago_or_in(when - now)})")
    exp = claims.get("exp")
    if not _is_time(exp):
        lines.append("expires: never (no exp claim)")
    else:
        words = ago_or_in(exp - now, future="expires in", past="expired")
        lines.append(f"expires: {_utc(exp)} ({words})")
    return lines


def kind(header: dict[str, Any]) -> str:
    """``at+jwt (an RFC 9068 JWT access token), RS256, kid abc``."""
    typ = str(header.get("typ", "JWT"))
    name = typ
    if typ.lower() in ("at+jwt", "application/at+jwt"):
        name = f"{typ} (an RFC 9068 JWT access token)"
    parts = [name, str(header.get("alg", "no alg"))]
    if "kid" in header:
        parts.append(f"kid {header['kid']}")
    return ", ".join(parts)


def _is_time(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _utc(when: float) -> str:
    try:
        return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{when:.0f} (out of range)"
