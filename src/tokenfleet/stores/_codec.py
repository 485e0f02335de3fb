"""How shared stores (file, Redis) write tokens: a versioned msgspec envelope.

The wire format is a msgpack array ``[v, fp, until, token]``:

* ``v``: the format version, ``1``. Anything else is a miss, so a fleet that is being
  upgraded never crashes on the other half's entries;
* ``fp``: the token's fingerprint (twelve hex digits of SHA-256, see
  :func:`tokenfleet._models.fingerprint`), in clear even if the token is sealed, so a
  compare-and-delete can tell which token an entry holds without decoding or decrypting
  it: :func:`header` gives the fixed leading bytes for a fingerprint;
* ``until``: the absolute deadline (Unix seconds) given by the store's ``ttl``; a store
  without its own expiry (the file store) treats the entry as a miss from then on;
* ``token``: the msgpack-encoded :class:`~tokenfleet.Token`; with a ``cipher`` (encryption
  at rest, e.g. :class:`~tokenfleet.AesGcmCipher`), the byte ``0xC1`` (never valid msgpack,
  so sealed and clear entries cannot be confused) then the cipher's sealed bytes, whose
  associated data is the cache key, the version, the fingerprint and ``until``: an entry
  copied to another key, or with its header edited, does not open.

The fingerprint (48 bits of SHA-256 of the access token) stays in clear: it tells which
token an entry holds, not what the token is.

A DPoP-bound token (RFC 9449) is useless without its private key, so the key travels
with it, inside the token body: its algorithm and PKCS#8 DER. That body is sealed by the
cipher; without a cipher, :func:`encode` refuses such a token (``DPoPKeyNotSealed``) and
:func:`decode_entry` refuses a clear entry that holds a key, so no private key ever lies
in a shared cache in clear.

Anything that does not decode (another version, truncated, garbage, wrong types, nesting
too deep for the decoder, a fingerprint that does not match its token) is a miss, reported
by :class:`Codec` with one WARNING per period per store, never with the bytes themselves.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import msgspec
from cryptography.exceptions import UnsupportedAlgorithm

from .._exceptions import ConfigurationError, DPoPKeyNotSealed
from .._jwt.dpop_key import DPoPKey
from .._models import Token

__all__ = [
    "VERSION",
    "Cipher",
    "Codec",
    "Cooldown",
    "associated_data",
    "decode",
    "encode",
    "header",
    "load",
]

VERSION = 1
_SEALED = b"\xc1"  # msgpack's one never-used byte: marks a sealed token body
_WARN_EVERY = 60.0  # seconds between two "unreadable entry" warnings of one store

logger = logging.getLogger("tokenfleet")

T = TypeVar("T")


class Cipher(Protocol):
    """Encryption at rest for stored tokens (:class:`~tokenfleet.AesGcmCipher` is one).

    Both methods get the same ``associated_data`` for one entry: authenticated, not
    encrypted, and required to match for ``open`` to succeed (AEAD, RFC 5116).
    """

    def seal(self, data: bytes, associated_data: bytes) -> bytes:
        """Encrypt and authenticate ``data``, bound to ``associated_data``."""
        ...

    def open(self, data: bytes, associated_data: bytes) -> bytes | None:
        """Decrypt ``data``; ``None`` if it is not authentic, not ours, or not for this
        ``associated_data``. Must not raise for any input."""
        ...


class _Envelope(msgspec.Struct, array_like=True):
    v: int
    fp: str
    until: float
    token: bytes


class Cooldown(msgspec.Struct, array_like=True):
    """A fleet-wide cooldown entry: until when (Unix seconds), and why."""

    until: float
    reason: str


class _Version(msgspec.Struct, array_like=True):
    v: int


def _enc_hook(value: object) -> object:
    """A DPoP key as ``[alg, PKCS#8 DER]``; only ever inside a sealed body (see above)."""
    if isinstance(value, DPoPKey):
        return (value.alg, value._export())
    raise NotImplementedError(f"cannot store a {type(value).__name__}")


def _dec_hook(kind: type, value: object) -> object:
    if kind is not DPoPKey:
        raise NotImplementedError(f"cannot read a {kind.__name__}")
    # Any other shape (a number, a map, three members) is an unreadable entry too.
    if isinstance(value, list) and len(value) == 2:
        alg, der = value
        if isinstance(alg, str) and isinstance(der, bytes):
            try:
                return DPoPKey._import(der, alg)
            except (ConfigurationError, ValueError, TypeError, UnsupportedAlgorithm):
                pass
    raise msgspec.ValidationError("not a usable DPoP key")


# msgspec reports invalid UTF-8 in a str field as UnicodeDecodeError, not DecodeError, and
# recurses once per nesting level, even to skip a member it does not know: planted
# ``[[[…50,000 levels…]]]`` (one byte per level) raises RecursionError at the interpreter's
# limit. All three are an unreadable entry (the JSON analogue is _util/untrusted_json.py).
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_version_decoder = msgspec.msgpack.Decoder(_Version)
_envelope_decoder = msgspec.msgpack.Decoder(_Envelope)
_token_decoder = msgspec.msgpack.Decoder(Token, dec_hook=_dec_hook)
_cooldown_decoder = msgspec.msgpack.Decoder(Cooldown)


def header(fp: str) -> bytes:
    """The leading bytes of every version-1 envelope holding a token with fingerprint ``fp``.

    A msgpack array's head, the version and the fingerprint string come first and have a
    fixed encoding, so ``value.startswith(header(fp))`` (or Lua's ``string.sub``) says
    which token an entry holds.
    """
    return b"\x94" + _encoder.encode(VERSION) + _encoder.encode(fp)


def associated_data(key: str, fp: str, until: float) -> bytes:
    """What a sealed token is bound to: its cache key and the clear envelope fields."""
    return _encoder.encode(("tokenfleet", VERSION, key, fp, until))


def encode(token: Token, until: float, *, cipher: Cipher | None = None, key: str = "") -> bytes:
    """The stored form of ``token`` under cache key ``key``, valid until ``until`` (Unix s).

    Raises:
        DPoPKeyNotSealed: ``token`` carries a DPoP key and there is no cipher to seal it.
    """
    if token.dpop_key is not None and cipher is None:
        raise DPoPKeyNotSealed(
            f"refusing to store the DPoP-bound token {token.fingerprint} under {key}: its "
            "private key would lie in the store in clear. Give the store a cipher "
            "(cipher=AesGcmCipher.from_env()), or keep DPoP tokens per process"
        )
    body = _encoder.encode(token)
    if cipher is not None:
        aad = associated_data(key, token.fingerprint, until)
        body = _SEALED + cipher.seal(body, aad)
    return _encoder.encode(_Envelope(VERSION, token.fingerprint, until, body))


def decode_entry(
    data: bytes, *, cipher: Cipher | None = None, key: str = ""
) -> tuple[Token, float] | str:
    """``(token, until)`` from a stored value, or the reason it cannot be read."""
    try:
        version = _version_decoder.decode(data).v
    except _UNREADABLE:
        return "not a tokenfleet entry (garbage or truncated)"
    if version != VERSION:
        return f"format version {version} (this tokenfleet reads {VERSION})"
    try:
        envelope = _envelope_decoder.decode(data)
        body = _unseal(envelope, cipher, key)
        if isinstance(body, str):
            return body
        token = _token_decoder.decode(body)
    except _UNREADABLE:
        return "a version-1 entry that does not decode (truncated or wrong types)"
    if token.fingerprint != envelope.fp:
        return "the fingerprint does not match the token"
    if token.dpop_key is not None and cipher is None:
        return "a DPoP key in clear (refused: keys are only read from sealed entries)"
    return token, envelope.until


def _unseal(envelope: _Envelope, cipher: Cipher | None, key: str) -> bytes | str:
    """The token's msgpack bytes, or why they cannot be had (never the bytes themselves)."""
    sealed = envelope.token.startswith(_SEALED)
    if cipher is None:
        return "an encrypted entry, and this store has no cipher" if sealed else envelope.token
    if not sealed:
        return "an unencrypted entry, refused because this store encrypts"
    aad = associated_data(key, envelope.fp, envelope.until)
    try:
        body = cipher.open(envelope.token[len(_SEALED) :], aad)
    except Exception:  # noqa: BLE001 - a third-party cipher must not crash a read
        body = None
    if body is None:
        return "the cipher refused it (no matching key, tampered, or another key's entry)"
    return body


def decode(data: bytes, *, cipher: Cipher | None = None, key: str = "") -> Token | None:
    """The token in a stored value, or ``None`` if it cannot be read (no logging)."""
    entry = decode_entry(data, cipher=cipher, key=key)
    return None if isinstance(entry, str) else entry[0]


def encode_cooldown(until: float, reason: str) -> bytes:
    """The stored form of a cooldown entry (the reason is cut to 200 characters)."""
    return _encoder.encode(Cooldown(until, reason[:200]))


def decode_cooldown(data: bytes) -> Cooldown | None:
    """A cooldown entry, or ``None`` if it cannot be read (or has no finite end: a NaN
    compares false with every clock reading, so it would never end)."""
    try:
        entry = _cooldown_decoder.decode(data)
    except _UNREADABLE:
        return None
    return entry if math.isfinite(entry.until) else None


def load(data: Any, kind: type[T]) -> T | None:
    """Any other msgpack read from a store or a channel (tombstones, pub/sub messages) as
    ``kind``, or ``None`` whatever ``data`` is (not bytes, garbage, deeply nested)."""
    try:
        value: T = msgspec.msgpack.decode(data, type=kind)
    except (*_UNREADABLE, TypeError):  # TypeError: a message whose data is not bytes
        return None
    return value


class Codec:
    """:func:`encode` and :func:`decode` for one store, with a rate-limited warning.

    Args:
        name: the store, as shown in the warning (must not contain secrets).
        cipher: optional encryption at rest (see :class:`Cipher`).
        clock: monotonic clock for the warning period, injectable for tests.
    """

    def __init__(
        self,
        name: str,
        *,
        cipher: Cipher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.cipher = cipher
        self._clock = clock
        self._warned_at: float | None = None

    def encode(self, token: Token, until: float, key: str) -> bytes:
        """See :func:`encode`."""
        return encode(token, until, cipher=self.cipher, key=key)

    def decode(self, data: bytes, key: str) -> Token | None:
        """The live token in ``data``; a miss (with a warning) if unreadable, or expired."""
        entry = decode_entry(data, cipher=self.cipher, key=key)
        if isinstance(entry, str):
            self._warn(key, entry)
            return None
        token, until = entry
        return token if time.time() < until else None

    def _warn(self, key: str, reason: str) -> None:
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < _WARN_EVERY:
            return
        self._warned_at = now
        logger.warning(
            "tokenfleet: %s: unreadable entry for %s treated as a miss: %s "
            "(further ones are not logged for %.0f s)",
            self.name,
            key,
            reason,
            _WARN_EVERY,
        )
