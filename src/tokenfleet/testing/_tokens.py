"""Issuing access tokens and checking them at the protected resource.

Access tokens are RS256 JWTs in the RFC 9068 profile (``typ: at+jwt``), or random opaque
strings when the server is asked for those.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from ._keys import KeyRing

_CACHE_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token request was granted."""

    client_id: str
    scopes: tuple[str, ...]
    audience: str | list[str]


@dataclass(frozen=True, slots=True)
class Holder:
    """Who a valid access token was issued to, as the resource sees it."""

    sub: str
    scope: str
    exp: float
    kid: str | None = None
    jkt: str | None = None  # RFC 9449 §6.1: the DPoP key the token is bound to


class TokenMinter:
    """Signs access tokens, remembers opaque ones and revocations, verifies at /resource.

    Args:
        keys: the signing keys (current and previous).
        clock: seconds since the epoch, injectable for tests.
    """

    def __init__(self, keys: KeyRing, clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self._clock = clock
        self._opaque: dict[str, Holder] = {}
        self._revoked: set[str] = set()
        # Verified JWTs, so thousands of resource requests with one token verify it once.
        self._verified: dict[str, Holder] = {}

    def issue(
        self,
        grant: Grant,
        issuer: str,
        lifetime: float,
        *,
        opaque: bool,
        scope_claim: str = "scope",
        jkt: str | None = None,
    ) -> str:
        """A new access token for ``grant`` that expires ``lifetime`` seconds from now.

        ``iat`` and ``nbf`` are ``int(now)``. ``exp`` is ``now + lifetime`` rounded *up*
        to a whole second, because common JWT libraries (pyjwt among them) truncate a
        fractional NumericDate (RFC 7519 §2) and would expire the token early. The
        protected resource enforces the exact ``now + lifetime``, which is what
        ``expires_in`` says, so a 0.5 s token really stops working after 0.5 s.

        ``scope_claim``: ``"scope"`` (RFC 9068, space-delimited), ``"scp"`` (a list, as
        some servers do) or ``""`` (no scope claim at all). ``jkt`` binds the token to a
        DPoP key (``cnf.jkt``, RFC 9449 §6.1).
        """
        now = self._clock()
        holder = Holder(grant.client_id, " ".join(grant.scopes), now + lifetime, jkt=jkt)
        if opaque:
            token = secrets.token_urlsafe(32)
            self._forget_expired(self._opaque, now, may_clear=False)
            self._opaque[token] = holder
            return token
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": grant.client_id,
            "client_id": grant.client_id,
            "aud": grant.audience,
            "iat": int(now),
            "nbf": int(now),
            "exp": math.ceil(holder.exp),
            "jti": secrets.token_urlsafe(16),
        }
        if scope_claim == "scope":
            claims["scope"] = holder.scope
        elif scope_claim == "scp":
            claims["scp"] = list(grant.scopes)
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        key = self.keys.current
        headers = {"typ": "at+jwt", "kid": key.kid}
        token = jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)
        # Remember the exact expiry (and skip verifying our own signature later).
        self._forget_expired(self._verified, now, may_clear=True)
        self._verified[token] = Holder(holder.sub, holder.scope, holder.exp, key.kid, jkt)
        return token

    def revoke(self, token: str) -> None:
        """Make the resource reject ``token`` from now on (safe from any thread)."""
        self._revoked.add(token)

    def holder(self, token: str, issuer: str) -> Holder | None:
        """Who ``token`` was issued to, or None if it is invalid, expired or revoked."""
        if token in self._revoked:
            return None
        now = self._clock()
        holder = self._opaque.get(token)
        if holder is None:
            holder = self._verified_jwt(token, issuer, now)
        return holder if holder is not None and holder.exp > now else None

    def _verified_jwt(self, token: str, issuer: str, now: float) -> Holder | None:
        holder = self._verified.get(token)
        # A cached result holds only while its key is on the ring (see KeyRing.rotate).
        if holder is not None and holder.kid is not None and self.keys.find(holder.kid):
            return holder
        holder = self._verify_jwt(token, issuer)
        if holder is not None:
            self._forget_expired(self._verified, now, may_clear=True)
            self._verified[token] = holder
        return holder

    def _verify_jwt(self, token: str, issuer: str) -> Holder | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.find(kid) if isinstance(kid, str) else None
            if key is None:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key,
                algorithms=["RS256"],
                issuer=issuer,
                options={"verify_aud": False, "require": ["exp", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        sub, scope, exp = str(claims["sub"]), str(claims.get("scope", "")), float(claims["exp"])
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str) else None
        return Holder(sub, scope, exp, key.kid, jkt)

    @staticmethod
    def _forget_expired(table: dict[str, Holder], now: float, *, may_clear: bool) -> None:
        if len(table) < _CACHE_LIMIT:
            return
        expired: Sequence[str] = [t for t, h in table.items() if h.exp <= now]
        for token in expired:
            del table[token]
        if may_clear and len(table) >= _CACHE_LIMIT // 2:
            table.clear()
