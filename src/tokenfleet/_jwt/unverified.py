"""Reading a JWT's header and claims without verifying it: for diagnostics only.

Used by ``tokenfleet decode`` and ``tokenfleet.check``. A JWS compact serialization is
three base64url segments, header.payload.signature (RFC 7515 §7.1); when one fails, the
error names it, so a token cut short by a copy-paste is told apart from an opaque one.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .._exceptions import ConfigurationError
from .._util.untrusted_json import UntrustedJSONError, load_object

__all__ = ["OpaqueToken", "decode_unverified", "describe_header"]

_SEGMENTS = ("header", "claims", "signature")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class OpaqueToken(ConfigurationError):
    """The token is not a (readable) JWT."""

    cli_kind = "not a JWT"


def _looks_like_jwt(token: str) -> bool:
    # '{' base64url-encoded: a JOSE header is a JSON object (RFC 7515 §4).
    return token.startswith("ey")


def _segment(value: str, index: int) -> dict[str, Any]:
    name = _SEGMENTS[index]
    where = f"segment {index + 1} of 3 ({name})"
    if not _BASE64URL.fullmatch(value):
        raise OpaqueToken(_damaged(f"{where} has characters outside base64url"))
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return load_object(raw)
    except (binascii.Error, ValueError, UntrustedJSONError):
        raise OpaqueToken(_damaged(f"{where} is not a base64url-encoded JSON object")) from None


def _damaged(detail: str) -> str:
    return (
        f"this looks like a truncated or damaged JWT: {detail}; copy the whole token "
        "again (e.g. tokenfleet token | tokenfleet decode -)"
    )


def decode_unverified(raw: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(header, claims)`` of a JWT, unverified; ``Bearer `` prefixes are dropped.

    Raises:
        OpaqueToken: it is not a JWT, or a damaged one (the message names the failing
            segment and never contains the token).
    """
    token = raw.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise OpaqueToken("no token given (empty input)")
    parts = token.split(".")
    if not _looks_like_jwt(token):
        raise OpaqueToken(
            "this is an opaque token: only its authorization server can read it "
            "(token introspection, RFC 7662)"
        )
    if len(parts) == 5:  # RFC 7516 §7.1
        raise OpaqueToken("this is an encrypted JWT (JWE): only its recipient can read it")
    if len(parts) != 3:
        raise OpaqueToken(_damaged(f"it has {len(parts)} segments, a JWT has 3"))
    header = _segment(parts[0], 0)
    claims = _segment(parts[1], 1)
    if not parts[2] or not _BASE64URL.fullmatch(parts[2]) or len(parts[2]) % 4 == 1:
        raise OpaqueToken(_damaged("segment 3 of 3 (signature) is empty or not base64url"))
    return header, claims


def describe_header(header: dict[str, Any]) -> str:
    """``at+jwt (an RFC 9068 JWT access token), RS256, kid abc``."""
    typ = str(header.get("typ", "JWT"))
    name = typ
    if typ.lower() in ("at+jwt", "application/at+jwt"):
        name = f"{typ} (an RFC 9068 JWT access token)"
    parts = [name, str(header.get("alg", "no alg"))]
    if "kid" in header:
        parts.append(f"kid {header['kid']}")
    return ", ".join(parts)
