"""``DPoPKey``: the proof-of-possession key of a client and the proofs it signs (RFC 9449).

Sans-I/O. A DPoP proof (RFC 9449 §4.2) is a JWS with ``typ: dpop+jwt``, the *public*
key as ``jwk`` in its header, and ``jti``, ``htm``, ``htu``, ``iat`` (plus ``ath`` next
to an access token, §4.2, and ``nonce`` when the server gave one, §8-9) in its payload.

The header is the same for every proof of one key, so it is encoded once; a proof then
costs one JSON encoding of six small claims and one signature (see benchmarks/).

The private key never leaves this object except through ``_export`` (used by the store
codec, which seals it with the store's cipher). The repr shows the algorithm and the RFC
7638 thumbprint, which is what a server binds tokens to (``cnf.jkt``) and is public.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from typing import Any, NoReturn

import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from yarl import URL

from .._exceptions import ConfigurationError
from .._util.redact import printable

__all__ = ["DPOP_ALGORITHMS", "DPoPKey", "b64url", "jwk_thumbprint", "normalize_htu", "token_hash"]

_KEY_TYPES = (  # the private keys a DPoPKey holds (RFC 9449 §5: asymmetric JWS keys)
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    rsa.RSAPrivateKey,
)

_CURVES: dict[str, tuple[ec.EllipticCurve, str, int, hashes.HashAlgorithm]] = {
    "ES256": (ec.SECP256R1(), "P-256", 32, hashes.SHA256()),
    "ES384": (ec.SECP384R1(), "P-384", 48, hashes.SHA384()),
    "ES512": (ec.SECP521R1(), "P-521", 66, hashes.SHA512()),
}
_RSA_HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
DPOP_ALGORITHMS = frozenset(
    {*_CURVES, "EdDSA", *(f"{f}{n}" for f in ("RS", "PS") for n in _RSA_HASHES)}
)
"""Asymmetric JWS algorithms a DPoP key may use (RFC 9449 §4.2: never ``none`` or MAC)."""

# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}
_PORTS = {"http": 80, "https": 443}
_encoder = msgspec.json.Encoder()

PrivateKey = (
    ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | rsa.RSAPrivateKey
)


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_hash(access_token: str) -> str:
    """``ath``: base64url SHA-256 of the access token's ASCII bytes (RFC 9449 §4.2)."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url (``cnf.jkt``, RFC 9449 §6.1).

    Raises:
        ConfigurationError: the JWK lacks a member its ``kty`` requires.
    """
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise ConfigurationError("the JWK is not a complete EC, OKP or RSA public key")
    canonical = _encoder.encode({m: jwk[m] for m in members})  # members already sorted
    return b64url(hashlib.sha256(canonical).digest())


def normalize_htu(url: str | URL) -> str:
    """The ``htu`` of a request URL: no query, fragment or userinfo (RFC 9449 §4.2), the
    scheme and host lowercased and a default port left out (RFC 3986 §6.2.2-6.2.3)."""
    parsed = url if isinstance(url, URL) else _parsed(url)
    scheme = (parsed.scheme or "").lower()
    host = (parsed.raw_host or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parsed.explicit_port
    netloc = host if port is None or port == _PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parsed.raw_path or '/'}"


def _parsed(url: object) -> URL:
    """``url`` as a yarl ``URL``; a request's URL may come from its (client-set) Host."""
    if not isinstance(url, str):
        raise ConfigurationError(f"the request url must be a str or URL, not {type(url).__name__}")
    try:
        return URL(url)
    except ValueError:  # a bad IPv6 literal, a port out of range...
        raise ConfigurationError(
            f"the request url {printable(url, 100)!r} is not a valid URL"
        ) from None


class DPoPKey:
    """A DPoP proof key (RFC 9449): signs the proofs that bind a token to its holder.

    Make one with :meth:`generate` or :meth:`from_pem`; ``ClientCredentials(dpop=True)``
    generates an ES256 key per client. Tokens fetched with a key carry it
    (``token.dpop_key``), so a process that reads a token from a shared store can prove
    possession too. ``repr`` shows the algorithm and thumbprint, never key material, and
    the key cannot be pickled.

    Attributes:
        alg: the JWS algorithm (``ES256``, ``EdDSA``, ``RS256``...).
        public_jwk: the public key as a JWK (RFC 7517), as sent in every proof.
        thumbprint: its RFC 7638 SHA-256 thumbprint, the ``cnf.jkt`` of bound tokens.
    """

    __slots__ = ("_header", "_key", "_sign", "alg", "public_jwk", "thumbprint")

    def __init__(self, key: PrivateKey, alg: str | None = None) -> None:
        chosen = alg or _default_alg(key)
        _check_fits(key, chosen)
        self._key = key
        self.alg = chosen
        self.public_jwk = _public_jwk(key)
        self.thumbprint = jwk_thumbprint(self.public_jwk)
        header = {"typ": "dpop+jwt", "alg": chosen, "jwk": self.public_jwk}
        self._header = b64url(_encoder.encode(header)) + "."
        self._sign = _signer(key, chosen)

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        """A new random key for ``alg``: ``ES256`` (default), ``ES384``, ``ES512`` or
        ``EdDSA`` (Ed25519). RSA keys come from :meth:`from_pem`.

        Raises:
            ConfigurationError: another algorithm.
        """
        if alg in _CURVES:
            return cls(ec.generate_private_key(_CURVES[alg][0]), alg)
        if alg == "EdDSA":
            return cls(ed25519.Ed25519PrivateKey.generate(), alg)
        raise ConfigurationError(
            f"DPoPKey.generate supports ES256, ES384, ES512 and EdDSA, not {alg!r} "
            "(load an RSA key with DPoPKey.from_pem)"
        )

    @classmethod
    def from_pem(
        cls, pem: str | bytes | Any, *, password: str | bytes | None = None, alg: str | None = None
    ) -> DPoPKey:
        """Load a PEM private key (PKCS#8, SEC1 or PKCS#1), e.g. one kept in a secret store.

        Args:
            pem: the PEM text or bytes, or a :class:`~tokenfleet.Secret` holding it.
            password: its password, if encrypted.
            alg: the JWS algorithm; default from the key (EC: by curve, Ed25519: EdDSA,
                RSA: RS256).

        Raises:
            ConfigurationError: not a PEM private key of a supported type, or a wrong
                password (the message never contains the key).
        """
        reveal = getattr(pem, "reveal_bytes", None)
        data = reveal() if callable(reveal) else pem
        if isinstance(data, str):
            data = data.encode()
        if not isinstance(data, bytes):
            raise ConfigurationError("DPoPKey.from_pem needs PEM text, bytes or a Secret")
        secret = password.encode() if isinstance(password, str) else password
        try:
            key = serialization.load_pem_private_key(data, password=secret)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigurationError(
                "DPoPKey.from_pem: not a PEM private key, or the password is wrong"
            ) from None
        if not isinstance(key, _KEY_TYPES):
            raise ConfigurationError("DPoPKey keys are EC, Ed25519/Ed448 or RSA keys")
        return cls(key, alg)

    def proof(
        self,
        method: str,
        url: str | URL,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        now: float | None = None,
    ) -> str:
        """A fresh DPoP proof JWT for one HTTP request (RFC 9449 §4.2).

        Args:
            method: the request's HTTP method (``htm``).
            url: the request URL; query and fragment are left out of ``htu``.
            access_token: the token sent with the request; adds ``ath``.
            nonce: the server's latest ``DPoP-Nonce``, if it gave one.
            now: Unix time for ``iat`` (default: the clock).
        """
        claims: dict[str, Any] = {
            "jti": b64url(os.urandom(16)),  # 128 bits: unique without coordination
            "htm": method.upper(),
            "htu": normalize_htu(url),
            "iat": int(time.time() if now is None else now),
        }
        if access_token is not None:
            claims["ath"] = token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        signing_input = self._header + b64url(_encoder.encode(claims))
        return signing_input + "." + b64url(self._sign(signing_input.encode("ascii")))

    def _export(self) -> bytes:
        """PKCS#8 DER of the private key: only for the store codec, which seals it."""
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def _import(cls, der: bytes, alg: str) -> DPoPKey:
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, _KEY_TYPES):
            raise ConfigurationError("a stored DPoP key is of an unsupported type")
        return cls(key, alg)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DPoPKey):
            return NotImplemented
        return self.thumbprint == other.thumbprint and self.alg == other.alg

    def __hash__(self) -> int:
        return hash((self.thumbprint, self.alg))

    def __repr__(self) -> str:
        return f"DPoPKey(alg={self.alg!r}, jkt={self.thumbprint!r})"

    __str__ = __repr__

    def __copy__(self) -> DPoPKey:
        return self  # immutable: a copy is the same key

    def __deepcopy__(self, memo: dict[int, Any]) -> DPoPKey:
        return self

    def __reduce__(self) -> NoReturn:
        raise ConfigurationError(
            "a tokenfleet.DPoPKey cannot be pickled: share DPoP tokens through an encrypted "
            "store (RedisStore(..., cipher=AesGcmCipher(...))), which seals the key"
        )


def _default_alg(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        for alg, (curve, *_rest) in _CURVES.items():
            if curve.name == key.curve.name:
                return alg
        raise ConfigurationError(f"EC curve {key.curve.name} is not usable for DPoP")
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    return "EdDSA"


def _check_fits(key: PrivateKey, alg: str) -> None:
    if alg not in DPOP_ALGORITHMS:
        raise ConfigurationError(
            f"{alg!r} is not a DPoP algorithm; choose from {', '.join(sorted(DPOP_ALGORITHMS))}"
        )
    fits = (
        (
            alg in _CURVES
            and isinstance(key, ec.EllipticCurvePrivateKey)
            and key.curve.name == _CURVES[alg][0].name
        )
        or (alg == "EdDSA" and isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)))
        or (alg[:2] in ("RS", "PS") and isinstance(key, rsa.RSAPrivateKey))
    )
    if not fits:
        raise ConfigurationError(f"a {type(key).__name__} cannot sign {alg}")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise ConfigurationError("RSA DPoP keys must have at least 2048 bits")


def _public_jwk(key: PrivateKey) -> dict[str, str]:
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        size = (public.curve.key_size + 7) // 8
        numbers = public.public_numbers()
        crv = next(c[1] for c in _CURVES.values() if c[0].name == public.curve.name)
        return {
            "kty": "EC",
            "crv": crv,
            "x": b64url(numbers.x.to_bytes(size, "big")),
            "y": b64url(numbers.y.to_bytes(size, "big")),
        }
    if isinstance(public, rsa.RSAPublicKey):
        rsa_numbers = public.public_numbers()
        return {"kty": "RSA", "n": _uint(rsa_numbers.n), "e": _uint(rsa_numbers.e)}
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    crv = "Ed25519" if isinstance(public, ed25519.Ed25519PublicKey) else "Ed448"
    return {"kty": "OKP", "crv": crv, "x": b64url(raw)}


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def _signer(key: PrivateKey, alg: str) -> Any:
    """A function bytes -> JWS signature bytes (RFC 7518 §3.3-3.5, RFC 8037 §3.1)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _curve, _crv, size, digest = _CURVES[alg]
        scheme = ec.ECDSA(digest)

        def sign_ec(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, scheme))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # JWS wants R || S

        return sign_ec
    if isinstance(key, rsa.RSAPrivateKey):
        digest_alg = _RSA_HASHES[alg[2:]]
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg.startswith("RS")
            else padding.PSS(padding.MGF1(digest_alg), digest_alg.digest_size)
        )
        return lambda data: key.sign(data, pad, digest_alg)
    return key.sign
