"""The checks on the token itself: latency, scopes, lifetime, type."""

from __future__ import annotations

from typing import Any

from .._client.credentials import ClientCredentials
from .._jwt.unverified import OpaqueToken, decode_unverified, describe_header
from .._models import Token
from .._util.words import duration_words, latency
from .result import AUTH, UNAVAILABLE, CheckResult, failed, passed

__all__ = ["check_latency", "check_lifetime", "check_scopes", "check_type", "claims_of"]

_SKEW = 60.0  # seconds of clock difference from which expiry maths goes wrong


def claims_of(token: Token) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(header, claims)`` if the access token is a JWT, else None."""
    try:
        return decode_unverified(token.access_token)
    except OpaqueToken:
        return None


def _granted(token: Token, claims: dict[str, Any] | None) -> tuple[str, ...]:
    """Scopes the token really carries (``scope``/``scp`` claim) or the response named."""
    if claims is not None:
        value = claims.get("scope", claims.get("scp"))
        if isinstance(value, str):
            return tuple(value.split())
        if isinstance(value, list):
            return tuple(str(v) for v in value)
    return token.scopes


def check_scopes(
    client: ClientCredentials, token: Token, claims: dict[str, Any] | None
) -> CheckResult:
    """Every requested scope granted?"""
    granted = _granted(token, claims)
    shown = " ".join(granted) or "(none)"
    if not client.scopes:
        return passed("scopes", f"none requested; granted: {shown}")
    missing = [s for s in client.scopes if s not in granted]
    if missing:
        return failed(
            "scopes",
            f"asked for {' '.join(client.scopes)}, granted {shown}: missing {' '.join(missing)}",
            f"grant {' '.join(missing)} to client {client.client_id} at the authorization "
            "server, or stop asking for it",
            AUTH,
        )
    return passed("scopes", f"granted as requested: {shown}")


def check_lifetime(token: Token, claims: dict[str, Any] | None) -> CheckResult:
    """How long tokens live, and whether this host's clock agrees with the server's."""
    life = token.lifetime
    refresh = life * 0.8
    detail = f"{duration_words(life)}; refreshed ahead after about {duration_words(refresh)}"
    iat = (claims or {}).get("iat")
    if isinstance(iat, int | float) and abs(iat - token.issued_at) > _SKEW:
        skew = token.issued_at - float(iat)
        return failed(
            "lifetime",
            f"{detail}, but this host's clock is {abs(skew):.0f} s "
            f"{'ahead of' if skew > 0 else 'behind'} the server's",
            "synchronise the clock (NTP / chrony): expiry is computed on wall-clock time",
            UNAVAILABLE,
        )
    if life <= 0:
        return failed(
            "lifetime", "the token is expired on arrival", "check the clocks", UNAVAILABLE
        )
    return passed("lifetime", detail)


def check_type(
    token: Token, jwt_parts: tuple[dict[str, Any], dict[str, Any]] | None
) -> CheckResult:
    """Bearer? JWT (at+jwt) or opaque?"""
    shape = "opaque (not a JWT)" if jwt_parts is None else f"JWT {describe_header(jwt_parts[0])}"
    if token.token_type.lower() != "bearer":
        return failed(
            "token type",
            f"token_type {token.token_type!r}, {shape}",
            "tokenfleet sends 'Authorization: <token_type> <token>': make sure the resource "
            "servers accept this type, or configure the client for Bearer tokens",
            AUTH,
        )
    return passed("token type", f"Bearer, {shape}")


def check_latency(seconds: float, limit: float) -> CheckResult:
    """The token request's round trip, against ``--max-latency``."""
    detail = f"token request round trip {latency(seconds)}"
    if seconds > limit:
        return failed(
            "latency",
            f"{detail} (over {limit:g} s)",
            "cached tokens hide this in steady state, but every cold start waits for it: "
            "check the network path and the server's load",
            UNAVAILABLE,
        )
    return passed("latency", detail)
