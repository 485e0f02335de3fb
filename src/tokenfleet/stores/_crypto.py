"""``AesGcmCipher``: authenticated encryption at rest for tokens in shared stores.

A token in Redis or in a file is a bearer credential: whoever can read the cache can call
the APIs as the service. With a cipher, the store keeps only ciphertext; reading it takes
a key the cache's readers do not have.

Sealed form (the codec adds its own marker byte in front)::

    0x01 | len(kid) | kid | nonce (12 bytes) | AES-256-GCM ciphertext and 16-byte tag

* a key ring: the first key seals, every key opens, picked by the key id (``kid``) stored
  in clear, so keys rotate without a flag day: deploy ``[new, old]``, wait one token
  lifetime, drop ``old``;
* the associated data (given by the codec) binds the ciphertext to its cache key and
  envelope: an entry copied to another key, or with its deadline edited, does not open;
* a random 96-bit nonce per seal (NIST SP 800-38D §8.2.2); a token store seals a few
  values per key and lifetime, far below the 2**32 messages per key that bound allows.

Nothing here logs, and no message or repr shows a key or a plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._exceptions import ConfigurationError
from .._models import Secret

__all__ = ["DEFAULT_ENV", "AesGcmCipher"]

DEFAULT_ENV = "TOKENFLEET_ENCRYPTION_KEYS"
_FORMAT = 1
_NONCE = 12
_KEY_SIZE = 32
_MAX_KID = 32
_URLSAFE = str.maketrans("-_", "+/")

KeyLike = bytes | Secret


class AesGcmCipher:
    """AES-256-GCM with a key ring, for ``FileStore(cipher=...)`` and ``RedisStore(cipher=...)``.

    The first key encrypts new entries; every key decrypts. An entry that no key opens
    (wrong key, no key, tampered, unencrypted, or copied from another cache key) is a
    cache miss with a rate-limited warning: the manager then fetches a new token.

    Args:
        keys: one 32-byte key, or several (newest first), or a mapping ``{key_id: key}``
            (newest first) to choose the key ids. Keys may be wrapped in
            :class:`~tokenfleet.Secret`. Without explicit ids, each key's id is derived
            from it: 8 hex digits of SHA-256 over a label and the key (not reversible).

    Raises:
        ConfigurationError: no key, a key that is not 32 bytes, a duplicate or bad key id.

    Example:
        ``RedisStore(url, cipher=AesGcmCipher.from_env())`` with
        ``TOKENFLEET_ENCRYPTION_KEYS`` set to the output of
        ``python -c "import tokenfleet; print(tokenfleet.AesGcmCipher.generate_key())"``.
    """

    __slots__ = ("_current", "_ring")

    def __init__(self, keys: KeyLike | Iterable[KeyLike] | Mapping[str, KeyLike]) -> None:
        pairs = _pairs(keys)
        if not pairs:
            raise ConfigurationError("AesGcmCipher needs at least one key")
        ring: dict[bytes, AESGCM] = {}
        for kid, key in pairs:
            if kid in ring:
                raise ConfigurationError(f"AesGcmCipher: key id {kid.decode()!r} given twice")
            ring[kid] = AESGCM(key)
        self._ring = ring
        self._current = pairs[0][0]

    @classmethod
    def from_env(
        cls, name: str = DEFAULT_ENV, environ: Mapping[str, str] | None = None
    ) -> AesGcmCipher:
        """Keys from an environment variable: base64 keys separated by commas or spaces,
        newest first, each optionally prefixed by its id (``kid:base64``).

        Raises:
            ConfigurationError: the variable is unset or empty, or a key does not decode
                to 32 bytes (the message names the variable and the position, never a key).
        """
        value = (os.environ if environ is None else environ).get(name, "").strip()
        if not value:
            raise ConfigurationError(f"environment variable {name} is unset or empty")
        items = value.replace(",", " ").split()
        if any(":" in item for item in items):
            named: dict[str, Secret] = {}
            for position, item in enumerate(items, 1):
                kid, _, encoded = item.rpartition(":")
                if not kid:
                    raise ConfigurationError(f"{name}: key {position} has no id before ':'")
                if kid in named:
                    raise ConfigurationError(f"{name}: key id {kid!r} given twice")
                named[kid] = Secret(_b64_key(encoded, name, position))
            return cls(named)
        return cls([Secret(_b64_key(item, name, pos)) for pos, item in enumerate(items, 1)])

    @staticmethod
    def generate_key() -> str:
        """A new random key, base64-encoded (for the environment variable)."""
        return base64.b64encode(secrets.token_bytes(_KEY_SIZE)).decode()

    @property
    def key_id(self) -> str:
        """The id of the key that encrypts new entries."""
        return self._current.decode()

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key that decrypts, the current one first."""
        return tuple(kid.decode() for kid in self._ring)

    def seal(self, data: bytes, associated_data: bytes) -> bytes:
        """Encrypt and authenticate ``data`` with the current key, bound to ``associated_data``."""
        kid = self._current
        nonce = os.urandom(_NONCE)
        sealed = self._ring[kid].encrypt(nonce, data, associated_data)
        return bytes((_FORMAT, len(kid))) + kid + nonce + sealed

    def open(self, data: bytes, associated_data: bytes) -> bytes | None:
        """The plaintext, or ``None`` if no key of the ring opens ``data`` as authentic."""
        if len(data) < 2 or data[0] != _FORMAT:
            return None
        end = 2 + data[1]
        aead = self._ring.get(data[2:end])
        if aead is None or len(data) < end + _NONCE + 16:
            return None
        try:
            return aead.decrypt(data[end : end + _NONCE], data[end + _NONCE :], associated_data)
        except InvalidTag:
            return None

    def __repr__(self) -> str:
        return f"AesGcmCipher(key_ids={list(self.key_ids)!r})"

    def __reduce__(self) -> NoReturn:
        raise ConfigurationError(
            "a tokenfleet AesGcmCipher cannot be pickled (it holds encryption keys): build "
            "it in each process, e.g. AesGcmCipher.from_env()"
        )


def _pairs(keys: KeyLike | Iterable[KeyLike] | Mapping[str, KeyLike]) -> list[tuple[bytes, bytes]]:
    if isinstance(keys, (bytes, Secret)):
        keys = [keys]
    if isinstance(keys, Mapping):
        return [(_kid(kid), _raw(key, str(kid))) for kid, key in keys.items()]
    if isinstance(keys, (str, bytearray, memoryview)):
        raise ConfigurationError(
            "AesGcmCipher keys are 32 raw bytes (use AesGcmCipher.from_env for base64 text)"
        )
    raws = [_raw(key, f"#{position}") for position, key in enumerate(keys, 1)]
    return [(_derived_kid(raw), raw) for raw in raws]


def _raw(key: object, label: str) -> bytes:
    raw = key.reveal_bytes() if isinstance(key, Secret) else key
    if not isinstance(raw, bytes):
        raise ConfigurationError(
            f"AesGcmCipher key {label} must be bytes or a Secret, got {type(raw).__name__}"
        )
    if len(raw) != _KEY_SIZE:
        raise ConfigurationError(
            f"AesGcmCipher key {label} must be {_KEY_SIZE} bytes (AES-256), got {len(raw)}"
        )
    return raw


def _kid(kid: object) -> bytes:
    if not isinstance(kid, str) or not kid or not kid.isascii() or not kid.isprintable():
        raise ConfigurationError("AesGcmCipher key ids must be non-empty printable ASCII")
    encoded = kid.encode()
    if len(encoded) > _MAX_KID:
        raise ConfigurationError(f"AesGcmCipher key ids are at most {_MAX_KID} characters")
    return encoded


def _derived_kid(key: bytes) -> bytes:
    return hashlib.sha256(b"tokenfleet key id\x00" + key).hexdigest()[:8].encode()


def _b64_key(encoded: str, name: str, position: int) -> bytes:
    try:  # standard or URL-safe alphabet
        raw = base64.b64decode(encoded.translate(_URLSAFE), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{name}: key {position} is not valid base64") from None
    if len(raw) != _KEY_SIZE:
        raise ConfigurationError(
            f"{name}: key {position} decodes to {len(raw)} bytes, need {_KEY_SIZE} (AES-256)"
        )
    return raw
