"""Reading JWT access tokens without verifying them, and the pure claim checks.

Sans-I/O. A client usually only *reads* its own access token (``token.claims``): the
authorization server that just handed it over on a TLS connection is the one party it
would verify it against. Verification (signature, JWKS) lives in ``_verifier``.

Reading splits the compact JWS (RFC 7515 §7.1) and decodes header and payload with
msgspec; it does not need pyjwt and costs a few microseconds (see benchmarks/). Results
are kept in a small module-level cache keyed by the token's digest, because :class:`Token` is a
frozen struct and cannot cache on itself; the hot path (``get_token``) never reads claims.
"""

from __future__ import annotations

import binascii
import hashlib
import math
from collections.abc import Collection
from typing import Any

import msgspec

from .._util.bounded import BoundedDict
from .._util.untrusted_json import UntrustedJSONError, load_object
from .errors import InvalidAudience, InvalidIssuer, MalformedToken, TokenExpired, TokenNotYetValid

__all__ = [
    "Claims",
    "JWSParts",
    "check_claims",
    "is_at_jwt",
    "read_claims",
    "split_jws",
]

_CACHE_SIZE = 256
_MAX_TOKEN_CHARS = 16 * 1024  # larger is not an access token worth decoding
_REGISTERED = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "scp"}
)


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    """The claims of a JWT access token (RFC 7519 §4.1, RFC 9068 §2.2), typed.

    Read without verification by ``token.claims``, or verified by
    :meth:`JWTVerifier.verify`. The raw token is not kept, so the repr is safe to log.

    Attributes:
        iss: issuer.
        sub: subject (for client credentials, usually the client).
        aud: audience, a string or a list of strings, as in the token.
        exp: expiry, Unix seconds.
        nbf: not valid before, Unix seconds.
        iat: issued at, Unix seconds.
        jti: the token's unique identifier.
        client_id: the client the token was issued to (RFC 9068 §2.2).
        scopes: ``scope`` (space-delimited, RFC 9068 §2.2.3) or ``scp`` (a list, or a
            string, as some servers send it), as a tuple.
        typ: the JOSE header's ``typ``; ``"at+jwt"`` marks an RFC 9068 access token.
        alg: the JOSE header's signing algorithm.
        kid: the JOSE header's key id.
        extra: every other claim.
    """

    iss: str | None = None
    sub: str | None = None
    aud: str | list[str] | None = None
    exp: float | None = None
    nbf: float | None = None
    iat: float | None = None
    jti: str | None = None
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    typ: str | None = None
    alg: str | None = None
    kid: str | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def audiences(self) -> tuple[str, ...]:
        """``aud`` as a tuple, whether the token has one audience or a list."""
        if self.aud is None:
            return ()
        return (self.aud,) if isinstance(self.aud, str) else tuple(self.aud)

    @property
    def is_access_token(self) -> bool:
        """Whether the header says RFC 9068 ``at+jwt`` (or ``application/at+jwt``)."""
        return is_at_jwt(self.typ)


def is_at_jwt(typ: str | None) -> bool:
    """RFC 9068 §2.1 ``typ``; media types compare case-insensitively (RFC 7515 §4.1.9)."""
    if typ is None:
        return False
    value = typ.lower()
    return value in ("at+jwt", "application/at+jwt")


class JWSParts(msgspec.Struct, frozen=True):
    """A compact JWS split and decoded, signature not checked."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _b64url(segment: str) -> bytes:
    # RFC 7515 §2: base64url without padding. Translating bytes and a2b_base64 in strict
    # mode is several times faster than str.translate + base64.b64decode.
    data = segment.encode("ascii").translate(_TO_STD) + b"=" * (-len(segment) % 4)
    return binascii.a2b_base64(data, strict_mode=True)


_TO_STD = bytes.maketrans(b"-_", b"+/")


def split_jws(token: str, *, signature: bool = True) -> JWSParts:
    """Split a compact JWS into decoded header, payload, signing input and signature.

    ``signature=False`` leaves the signature undecoded (empty), for reading only.

    Raises:
        MalformedToken: not three base64url segments with JSON-object header and payload.
    """
    if len(token) > _MAX_TOKEN_CHARS:
        raise MalformedToken(f"the token is {len(token)} characters long; not a JWT")
    parts = token.split(".")
    if len(parts) != 3:
        what = "a JWE (5 parts)" if len(parts) == 5 else f"{len(parts)} dot-separated parts"
        raise MalformedToken(f"not a compact JWS (RFC 7515 §7.1): {what}")
    try:
        header = load_object(_b64url(parts[0]))
        payload = load_object(_b64url(parts[1]))
        sig = _b64url(parts[2]) if signature else b""
    except (binascii.Error, ValueError, UntrustedJSONError):
        header = None  # raised below, outside the handler: a UnicodeEncodeError as our
        # __context__ would keep the whole segment in its ``object``
    if header is None:
        raise MalformedToken("not a JWT: a segment is not base64url-encoded JSON object")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii") if signature else b""
    return JWSParts(header, payload, signing_input, sig)


def claims_from(parts: JWSParts) -> Claims:
    """Typed :class:`Claims` from a split JWS.

    Raises:
        MalformedToken: a registered claim or header member has the wrong type.
    """
    header, payload = parts.header, parts.payload
    return Claims(
        iss=_str(payload, "iss"),
        sub=_str(payload, "sub"),
        aud=_aud(payload.get("aud")),
        exp=_date(payload, "exp"),
        nbf=_date(payload, "nbf"),
        iat=_date(payload, "iat"),
        jti=_str(payload, "jti"),
        client_id=_str(payload, "client_id"),
        scopes=_scopes(payload),
        typ=_str(header, "typ"),
        alg=_str(header, "alg"),
        kid=_str(header, "kid"),
        extra={k: v for k, v in payload.items() if k not in _REGISTERED},
    )


def _str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or isinstance(value, str):
        return value
    raise MalformedToken(f"the {name!r} member must be a string, not {type(value).__name__}")


def _date(data: dict[str, Any], name: str) -> float | None:
    # RFC 7519 §2 NumericDate: a JSON number (bool is an int in Python: refuse it).
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise MalformedToken(f"the {name!r} claim must be a number (RFC 7519 §2 NumericDate)")


def _aud(value: object) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise MalformedToken("the 'aud' claim must be a string or a list of strings")


def _scopes(payload: dict[str, Any]) -> tuple[str, ...]:
    value = payload.get("scope")
    if value is None:
        value = payload.get("scp")
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(dict.fromkeys(value.split()))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(dict.fromkeys(value))
    raise MalformedToken("the 'scope'/'scp' claim must be a string or a list of strings")


# --------------------------------------------------------------------------- reading

# Keyed by a digest, not the token: the table must not keep up to _CACHE_SIZE bearer
# tokens alive in memory (a heap dump, a debugger's locals view) after their use.
_cache: BoundedDict[bytes, Claims | None] = BoundedDict(_CACHE_SIZE)


def _cache_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def read_claims(token: str) -> Claims | None:
    """The claims of ``token`` without verifying it, or ``None`` if it is not a JWT.

    Opaque tokens, JWEs and malformed JWTs give ``None``: no error, no warning. The
    result is cached (a bounded, module-level table keyed by the token's SHA-256).
    """
    key = _cache_key(token)
    try:
        return _cache[key]
    except KeyError:
        pass
    claims: Claims | None = None
    if token.count(".") == 2:  # cheap pre-check: anything else is opaque to us
        try:
            claims = claims_from(split_jws(token, signature=False))
        except MalformedToken:
            claims = None
    _cache[key] = claims  # beyond _CACHE_SIZE, the oldest entry goes
    return claims


# --------------------------------------------------------------------------- checking


def check_claims(
    claims: Claims,
    *,
    issuer: str,
    audiences: Collection[str] | None,
    now: float,
    leeway: float,
) -> None:
    """The RFC 9068 §4 / RFC 7519 §4.1 checks: ``iss``, ``aud``, ``exp``, ``nbf``.

    ``exp`` is required (RFC 9068 §2.2); ``audiences=None`` skips the ``aud`` check.

    Raises:
        InvalidIssuer, InvalidAudience, TokenExpired, TokenNotYetValid, MalformedToken.
    """
    if claims.iss != issuer:
        got = "no 'iss' claim" if claims.iss is None else f"iss {claims.iss!r}"
        raise InvalidIssuer(f"the token has {got}; expected {issuer!r}")
    if audiences is not None and not set(claims.audiences) & set(audiences):
        got = "no 'aud' claim" if claims.aud is None else f"aud {claims.aud!r}"
        raise InvalidAudience(f"the token has {got}; expected one of {sorted(audiences)!r}")
    if claims.exp is None:
        raise MalformedToken("the token has no 'exp' claim (required by RFC 9068 §2.2)")
    if now >= claims.exp + leeway:
        raise TokenExpired(f"the token expired {now - claims.exp:.0f} s ago (leeway {leeway:g} s)")
    if claims.nbf is not None and now < claims.nbf - leeway:
        raise TokenNotYetValid(
            f"the token is not valid for another {claims.nbf - now:.0f} s (leeway {leeway:g} s)"
        )
