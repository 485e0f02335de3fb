"""Signing keys for the dev authorization server: a small pre-generated pool and a key ring.

Generating a 2048-bit RSA key costs 50-100 ms, so a test session that starts hundreds of
servers would spend seconds on key generation alone. Keys therefore come from a small
process-wide pool, generated on first use; only rotations past the pool size generate
fresh keys. Every server gives its keys its own random ``kid``, so a token from one server
never matches a JWK of another server by ``kid`` even when the key material is shared.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

_POOL_SIZE = 4
_pool: list[rsa.RSAPrivateKey] = []
_pool_lock = threading.Lock()


def _generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pooled_key(index: int) -> rsa.RSAPrivateKey:
    """Return the ``index``-th key of the process-wide pool, or a fresh key past its end."""
    if index >= _POOL_SIZE:
        return _generate_rsa_key()
    with _pool_lock:
        while len(_pool) <= index:
            _pool.append(_generate_rsa_key())
        return _pool[index]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An RSA key pair with its key id, as published in the JWKS."""

    kid: str
    private_key: rsa.RSAPrivateKey
    public_key: rsa.RSAPublicKey = field(repr=False)

    @classmethod
    def from_private_key(cls, private_key: rsa.RSAPrivateKey) -> SigningKey:
        """Wrap ``private_key`` with a new random ``kid``."""
        return cls(secrets.token_hex(8), private_key, private_key.public_key())

    @property
    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK (RFC 7517 §4) for signature verification with RS256."""
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.public_key))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return jwk


class KeyRing:
    """The current signing key and the one before it.

    Tokens signed with the previous key stay verifiable after one rotation, so a client
    can observe a rotation without its tokens breaking; after a second rotation the oldest
    key is gone from the JWKS and its tokens no longer verify.
    """

    def __init__(self) -> None:
        self._generation = 0
        # One tuple, replaced whole, so readers in another thread see a consistent pair.
        self._keys: tuple[SigningKey, ...] = (SigningKey.from_private_key(pooled_key(0)),)

    @property
    def current(self) -> SigningKey:
        """The key that signs new tokens."""
        return self._keys[0]

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """The current key, then the previous one if any."""
        return self._keys

    def rotate(self) -> SigningKey:
        """Make a new current key; keep the old current as previous; drop the oldest."""
        self._generation += 1
        new = SigningKey.from_private_key(pooled_key(self._generation))
        self._keys = (new, self._keys[0])
        return new

    def find(self, kid: str) -> SigningKey | None:
        """The key with this ``kid``, if still on the ring."""
        return next((key for key in self._keys if key.kid == kid), None)

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (RFC 7517 §5) of every key on the ring."""
        return {"keys": [key.public_jwk() for key in self._keys]}
