"""JWK Sets (RFC 7517) and the algorithm policy for verifying JWT access tokens.

Pure: parse a JWK Set into verification keys, decide which algorithms each key may
verify, and pick the key for a token. The policy refuses what the classic JWT attacks
need: ``alg: none``, HMAC (an HMAC "signature" keyed with a *public* key is algorithm
confusion, RFC 8725 §2.1 and §3.1), a key published for encryption (``use: enc``), a key
declared for another algorithm, and private key material in a public set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jwt.algorithms import Algorithm, ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.algorithms import get_default_algorithms as _pyjwt_algorithms
from jwt.exceptions import PyJWKError, PyJWTError

from .._exceptions import ConfigurationError, DiscoveryError
from .._util.redact import printable
from .._util.untrusted_json import UntrustedJSONError, load_object
from .errors import DisallowedAlgorithm, UnknownKey

__all__ = ["ASYMMETRIC_ALGORITHMS", "KeySet", "VerificationKey", "check_algorithms", "parse_jwks"]

# What each asymmetric JWS algorithm needs (RFC 7518 §3.1, RFC 8037 §3.1): kty and curve.
_NEEDS: dict[str, tuple[str, frozenset[str] | None]] = {
    **{f"{f}{n}": ("RSA", None) for f in ("RS", "PS") for n in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
ASYMMETRIC_ALGORITHMS = frozenset(_NEEDS)
"""The JWS algorithms a JWK Set can verify; anything else is refused."""

# When a key does not declare its ``alg``: the one algorithm its type implies.
_IMPLIED = {"RSA": "RS256", "P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_LOADERS: dict[str, Any] = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}
_ALGORITHMS: dict[str, Algorithm] = _pyjwt_algorithms()


def check_algorithms(algorithms: Iterable[str] | None) -> frozenset[str] | None:
    """Validate a user's allow-list: asymmetric algorithms only.

    Raises:
        ConfigurationError: ``none``, an HMAC algorithm or an unknown name.
    """
    if algorithms is None:
        return None
    chosen = frozenset([algorithms] if isinstance(algorithms, str) else algorithms)
    if not chosen:
        raise ConfigurationError("algorithms must not be empty (None: from the JWKS keys)")
    if bad := chosen - ASYMMETRIC_ALGORITHMS:
        raise ConfigurationError(
            f"algorithms {sorted(bad)} cannot be verified with a JWK Set's public keys; "
            f"choose from {sorted(ASYMMETRIC_ALGORITHMS)}"
        )
    return chosen


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key from the JWK Set and the algorithms it may verify."""

    kid: str | None
    kty: str
    algorithms: frozenset[str]
    key: Any = field(repr=False)

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is a valid ``alg`` signature of ``signing_input``."""
        return _ALGORITHMS[alg].verify(signing_input, self.key, signature)


@dataclass(frozen=True, slots=True)
class KeySet:
    """The usable keys of one JWK Set, and why the others are not usable."""

    keys: tuple[VerificationKey, ...] = ()
    unusable: dict[str, str] = field(default_factory=dict)  # kid -> reason

    def select(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for a token's ``kid`` and ``alg``; ``None`` if this set has none.

        Raises:
            UnknownKey: the kid names a key that may not verify signatures.
            DisallowedAlgorithm: the key may not verify ``alg``.
        """
        if kid is None:
            # No kid: acceptable only when exactly one key could have signed (RFC 7515 §4.1.4).
            fitting = [k for k in self.keys if alg in k.algorithms]
            if len(fitting) == 1:
                return fitting[0]
            if not fitting:
                return None
            raise UnknownKey(f"the token has no 'kid' and {len(fitting)} keys fit {alg}")
        key = next((k for k in self.keys if k.kid == kid), None)
        if key is None:
            if kid in self.unusable:
                raise UnknownKey(f"the JWKS key {kid!r} {self.unusable[kid]}")
            return None
        if alg not in key.algorithms:
            raise DisallowedAlgorithm(
                f"the token says alg {alg!r} but the JWKS key {kid!r} may only verify "
                f"{', '.join(sorted(key.algorithms)) or 'nothing allowed'}"
            )
        return key


def parse_jwks(body: bytes, *, url: str, allowed: frozenset[str] | None) -> KeySet:
    """Parse a JWK Set; keys that cannot verify signatures are kept aside with a reason.

    ``allowed``: the user's allow-list, or ``None`` for each key's declared (or implied)
    algorithm.

    Raises:
        DiscoveryError: the document is not a JWK Set.
    """
    try:
        data = load_object(body)
    except UntrustedJSONError as exc:
        raise DiscoveryError(f"the JWKS at {url} is not usable: {exc}") from None
    entries = data.get("keys")
    if not isinstance(entries, list):
        raise DiscoveryError(f"the JWKS at {url} has no 'keys' list (RFC 7517 §5)")
    keys: list[VerificationKey] = []
    unusable: dict[str, str] = {}
    for jwk in entries:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
        try:
            keys.append(_parse_key(jwk, kid, allowed))
        except _Unusable as exc:
            if kid is not None:
                unusable[kid] = str(exc)
    return KeySet(tuple(keys), unusable)


class _Unusable(Exception):
    """This JWK cannot verify signatures; the message says why."""


def _parse_key(
    jwk: dict[str, Any], kid: str | None, allowed: frozenset[str] | None
) -> VerificationKey:
    use, ops, kty = jwk.get("use"), jwk.get("key_ops"), jwk.get("kty")
    if use is not None and use != "sig":  # RFC 7517 §4.2
        raise _Unusable(f"is published for use {use!r}, not for signatures ('sig')")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):  # §4.3
        raise _Unusable(f"has key_ops {ops!r}, without 'verify'")
    if "d" in jwk or "k" in jwk:
        raise _Unusable("holds private or symmetric key material; a JWKS must be public")
    if not isinstance(kty, str) or kty not in _LOADERS:  # untrusted: may be a list
        raise _Unusable(f"has kty {printable(repr(kty), 40)}, which tokenfleet cannot verify with")
    crv = jwk.get("crv") if isinstance(jwk.get("crv"), str) else None
    fits = {
        a for a, (t, curves) in _NEEDS.items() if t == kty and (curves is None or crv in curves)
    }
    declared = jwk.get("alg")
    if declared is not None and not isinstance(declared, str):
        raise _Unusable(f"has alg {printable(repr(declared), 40)}, not a string (RFC 7517 §4.4)")
    if declared is not None:
        # RFC 7517 §4.4: a key that declares its algorithm is used with that one only.
        fits &= {declared}
    elif allowed is None:
        implied = _IMPLIED.get(crv or kty, "EdDSA" if kty == "OKP" else None)
        fits &= {implied} if implied else set()
    if allowed is not None:
        fits &= allowed
    if not fits:
        raise _Unusable(f"({kty}, alg {declared!r}) fits none of the allowed algorithms")
    try:
        key = _LOADERS[kty].from_jwk(jwk)
    except (PyJWKError, PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise _Unusable(f"cannot be loaded ({type(exc).__name__})") from None
    return VerificationKey(kid, kty, frozenset(fits), key)
