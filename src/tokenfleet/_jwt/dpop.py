"""``DPoPVerifier``: the resource server's check of DPoP proofs (RFC 9449 §4.3, §7).

Pure apart from its two small memories, both bounded: the ``jti`` of every accepted
proof within the window (replay detection, §11.1), and the current and previous server
nonce (§9). Each failure raises its own :class:`~tokenfleet.DPoPProofError` subclass,
whose ``error`` is the code for the ``WWW-Authenticate: DPoP`` challenge.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .claims import Claims, split_jws
from .dpop_key import DPOP_ALGORITHMS, b64url, jwk_thumbprint, normalize_htu, token_hash
from .errors import (
    DPoPKeyMismatch,
    DPoPMethodMismatch,
    DPoPNonceRequired,
    DPoPProofExpired,
    DPoPProofReplayed,
    DPoPSignatureInvalid,
    DPoPTokenHashMismatch,
    DPoPUrlMismatch,
    MalformedDPoPProof,
    MalformedToken,
)
from .jwks import VerificationKey, _parse_key, _Unusable

if TYPE_CHECKING:
    from .._models import Secret

__all__ = ["DPoPVerifier", "bound_jkt"]

_MAX_PROOF = 8 * 1024
_MAX_JTI = 256
_KEY_CACHE = 1024
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def bound_jkt(claims: Claims) -> str | None:
    """The ``cnf.jkt`` of a DPoP-bound token's claims (RFC 9449 §6.1), or None."""
    cnf = claims.extra.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


class DPoPVerifier:
    """Checks the DPoP proof that comes with a request (RFC 9449 §4.3).

    ``JWTVerifier.verify(token, dpop_proof=..., method=..., url=...)`` uses one for
    DPoP-bound JWTs; use it directly for opaque tokens (pass the ``jkt`` that
    introspection gave) or at a token endpoint (no ``access_token``).

    Args:
        algorithms: accepted proof algorithms (default: ES256/384/512, EdDSA, RS*, PS*).
        max_age: how old (by ``iat``) a proof may be, in seconds; also how long its
            ``jti`` is remembered.
        leeway: seconds a proof's ``iat`` may be ahead of this clock.
        require_nonce: demand a server nonce in every proof (§9); a proof without the
            current (or previous) one raises :class:`DPoPNonceRequired` with the nonce
            to send in ``DPoP-Nonce``.
        nonce_lifetime: seconds between nonce rotations; the previous nonce stays valid
            for one more period.
        nonce_key: a secret (16+ bytes) shared by every worker of the resource server:
            nonces are then derived from it and the time (HMAC-SHA256), so a nonce
            issued by one worker is accepted by all. Without it, each verifier draws
            random nonces of its own.
        replay_cache_size: the most ``jti`` values remembered. Size it above the proofs
            accepted per ``max_age``; beyond it the oldest are forgotten early.
        clock: Unix-time clock, injectable for tests.
    """

    def __init__(
        self,
        *,
        algorithms: Iterable[str] | None = None,
        max_age: float = 60.0,
        leeway: float = 5.0,
        require_nonce: bool = False,
        nonce_lifetime: float = 300.0,
        nonce_key: bytes | Secret | None = None,
        replay_cache_size: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        chosen = frozenset(DPOP_ALGORITHMS if algorithms is None else algorithms)
        if not chosen or not chosen <= DPOP_ALGORITHMS:
            raise ConfigurationError(
                f"DPoP algorithms must be among {', '.join(sorted(DPOP_ALGORITHMS))}"
            )
        if not max_age > 0 or leeway < 0 or not nonce_lifetime > 0 or replay_cache_size < 1:
            raise ConfigurationError(
                "need max_age > 0, leeway >= 0, nonce_lifetime > 0, replay_cache_size >= 1"
            )
        self.algorithms = chosen
        self.max_age = float(max_age)
        self.leeway = float(leeway)
        self.require_nonce = require_nonce
        self.nonce_lifetime = float(nonce_lifetime)
        self.replay_cache_size = replay_cache_size
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # jti -> forget after
        self._keys: OrderedDict[str, VerificationKey] = OrderedDict()  # header -> key
        self._nonce_key = _key_bytes(nonce_key)
        self._nonces = (secrets.token_urlsafe(16), "")
        self._nonce_at = clock()

    @property
    def nonce(self) -> str:
        """The current server nonce (rotated every ``nonce_lifetime``), for ``DPoP-Nonce``."""
        now = self._clock()
        if self._nonce_key is not None:
            # Stateless: every verifier with this key derives the same nonce per period.
            period = int(now // self.nonce_lifetime)
            self._nonces = (self._derived(period), self._derived(period - 1))
        elif now - self._nonce_at >= self.nonce_lifetime:
            self._nonces = (secrets.token_urlsafe(16), self._nonces[0])
            self._nonce_at = now
        return self._nonces[0]

    def _derived(self, period: int) -> str:
        assert self._nonce_key is not None
        mac = hmac.new(self._nonce_key, b"tokenfleet dpop nonce %d" % period, hashlib.sha256)
        return b64url(mac.digest()[:16])

    def verify(
        self,
        proof: str | None,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        jkt: str | None = None,
    ) -> str:
        """Check ``proof`` for a request; return the proof key's thumbprint (``jkt``).

        Args:
            proof: the ``DPoP`` header's value (exactly one header, §4.3 item 1).
            method: the request's HTTP method.
            url: the request's full URL as the server received it.
            access_token: the token presented with the request: ``ath`` must match.
            jkt: the token's ``cnf.jkt``: the proof key must have this thumbprint.

        Raises:
            DPoPProofError: the subclass names the failed rule.
        """
        if not isinstance(method, str):
            raise ConfigurationError("method must be the request's HTTP method, a str")
        header, claims = self._decode(proof)
        if claims["htm"] != method.upper():
            raise DPoPMethodMismatch(f"the proof is for {claims['htm'][:16]!r}, not {method}")
        if _htu(claims["htu"]) != normalize_htu(url):
            raise DPoPUrlMismatch("the proof's htu is not this request's URL")
        self._check_nonce(claims.get("nonce"))
        self._check_iat(claims["iat"])
        if access_token is not None and not _same(claims.get("ath"), token_hash(access_token)):
            raise DPoPTokenHashMismatch("the proof's ath is not the hash of the presented token")
        thumbprint = jwk_thumbprint(header["jwk"])
        if jkt is not None and not _same(thumbprint, jkt):
            raise DPoPKeyMismatch(
                "the proof is signed by another key than the one the token is bound to "
                "(cnf.jkt): the token is used without its key"
            )
        self._remember(claims["jti"])
        return thumbprint

    # ------------------------------------------------------------------ the rules

    def _decode(self, proof: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """§4.3 items 2-7: a well-formed, signed ``dpop+jwt`` with a public ``jwk``."""
        if not isinstance(proof, str) or not proof or len(proof) > _MAX_PROOF or "," in proof:
            raise MalformedDPoPProof("exactly one DPoP proof (a compact JWS) is required")
        try:
            parts = split_jws(proof)
        except MalformedToken as exc:
            raise MalformedDPoPProof(f"the DPoP proof is malformed: {exc}") from None
        header, claims = parts.header, parts.payload
        alg, jwk = header.get("alg"), header.get("jwk")
        if header.get("typ") != "dpop+jwt":
            raise MalformedDPoPProof("the proof's typ is not 'dpop+jwt' (RFC 9449 §4.2)")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise MalformedDPoPProof(
                f"the proof's alg is not one of {', '.join(sorted(self.algorithms))}"
            )
        if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & jwk.keys():
            raise MalformedDPoPProof("the proof's jwk must be a public key (RFC 9449 §4.3)")
        key = self._key_for(proof.partition(".")[0], jwk, alg)
        if not key.verify(alg, parts.signing_input, parts.signature):
            raise DPoPSignatureInvalid("the proof's signature does not verify with its jwk")
        for name, kind in (("jti", str), ("htm", str), ("htu", str)):
            if not isinstance(claims.get(name), kind):
                raise MalformedDPoPProof(f"the proof has no {name!r} string claim")
        iat = claims.get("iat")
        if not isinstance(iat, (int, float)) or isinstance(iat, bool):
            raise MalformedDPoPProof("the proof has no numeric 'iat' claim")
        if len(claims["jti"]) > _MAX_JTI:
            raise MalformedDPoPProof(f"the proof's jti is longer than {_MAX_JTI} characters")
        return header, claims

    def _key_for(self, segment: str, jwk: dict[str, Any], alg: str) -> VerificationKey:
        """The key of a proof header; cached by the header's bytes, which are the same for
        every proof of one client key (loading a JWK costs more than verifying)."""
        key = self._keys.get(segment)
        if key is None:
            try:
                key = _parse_key(jwk, None, frozenset({alg}))
            except _Unusable as exc:
                raise MalformedDPoPProof(f"the proof's jwk {exc}") from None
            self._keys[segment] = key
            if len(self._keys) > _KEY_CACHE:
                self._keys.popitem(last=False)
        return key

    def _check_nonce(self, nonce: object) -> None:
        if not self.require_nonce:
            return
        current = self.nonce  # also rotates or re-derives self._nonces
        if not isinstance(nonce, str) or nonce not in self._nonces or not nonce:
            raise DPoPNonceRequired(
                "the proof does not carry the server's current DPoP nonce", nonce=current
            )

    def _check_iat(self, iat: float) -> None:
        now = self._clock()
        if iat < now - self.max_age - self.leeway or iat > now + self.leeway:
            raise DPoPProofExpired(
                f"the proof was made {now - iat:.0f} s ago; accepted: up to "
                f"{self.max_age:g} s old and {self.leeway:g} s ahead (is a clock wrong?)"
            )

    def _remember(self, jti: str) -> None:
        """§11.1: a ``jti`` is accepted once while its proof could still be accepted."""
        now = self._clock()
        seen = self._seen
        while seen and (next(iter(seen.values())) < now or len(seen) >= self.replay_cache_size):
            seen.popitem(last=False)
        if jti in seen:
            raise DPoPProofReplayed("this DPoP proof (its jti) was already used: a replay")
        seen[jti] = now + self.max_age + 2 * self.leeway

    def __repr__(self) -> str:
        return (
            f"DPoPVerifier(max_age={self.max_age:g}, require_nonce={self.require_nonce}, "
            f"remembered={len(self._seen)})"
        )


def _key_bytes(key: object) -> bytes | None:
    if key is None:
        return None
    reveal = getattr(key, "reveal_bytes", None)  # a tokenfleet.Secret (not imported: cycle)
    raw = reveal() if callable(reveal) else key
    if not isinstance(raw, bytes) or len(raw) < 16:
        raise ConfigurationError("DPoPVerifier nonce_key must be at least 16 bytes")
    return raw


def _htu(claimed: str) -> str | None:
    """The proof's ``htu`` normalised, or None if it is not a URL at all."""
    try:
        return normalize_htu(claimed)
    except ValueError:  # yarl: a bad IPv6 literal, a port out of range...
        return None


def _same(a: object, b: str) -> bool:
    return isinstance(a, str) and hmac.compare_digest(a.encode(), b.encode())
