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

from .._jwt.unverified import OpaqueToken, describe_header
from .._jwt.unverified import decode_unverified as decode
from ._output import ago_or_in, out

__all__ = ["OpaqueToken", "add_parser", "decode", "kind", "run"]

kind = describe_header


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


def summary(header: dict[str, Any], claims: dict[str, Any], now: float) -> list[str]:
    """The lines below the JSON: what kind of token, issued when, expires when."""
    lines = [f"type:    {kind(header)}"]
    for claim, label in (("iat", "issued: "), ("nbf", "valid from:")):
        when = claims.get(claim)
        if _is_time(when):
            lines.append(f"{label:<8} {_utc(when)} ({ago_or_in(when - now)})")
    cnf = claims.get("cnf")
    if isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str):
        lines.append(f"bound:   DPoP key cnf.jkt={cnf['jkt']} (RFC 9449: needs a proof)")
    exp = claims.get("exp")
    if not _is_time(exp):
        lines.append("expires: never (no exp claim)")
    else:
        words = ago_or_in(exp - now, future="expires in", past="expired")
        lines.append(f"expires: {_utc(exp)} ({words})")
    return lines


def _is_time(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _utc(when: float) -> str:
    try:
        return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{when:.0f} (out of range)"
