"""The domain objects: :class:`Token` and :class:`Secret`.

``Token`` is a frozen msgspec Struct with an *absolute* expiry (Unix seconds), so a token
written to a shared store by one process means the same thing in another. Its repr never
shows the access token, only a short fingerprint; ``Secret`` wraps a credential so that
repr, str, format, logging and pickling never show it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any, NoReturn

import msgspec

from ._exceptions import ConfigurationError
from ._jwt.claims import Claims, read_claims
from ._jwt.dpop_key import DPoPKey

__all__ = [
    "MAX_TOKEN_CHARS",
    "NO_EXTRA",
    "Secret",
    "Token",
    "fingerprint",
    "header_safe",
    "unusable",
]

# RFC 6750 §2.1 b64token, widened to any visible ASCII: what matters is that the value
# cannot break an HTTP header (no spaces, CR, LF or non-ASCII).
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
MAX_TOKEN_CHARS = 1024 * 1024
"""No access token longer than a whole token response may be (``MAX_BODY_BYTES``)."""


def header_safe(value: str) -> bool:
    """Whether ``value`` can go in an HTTP header as a token or token type."""
    return bool(value) and _HEADER_SAFE.fullmatch(value) is not None


def unusable(token: Token) -> str | None:
    """Why ``token`` cannot be handed out (``None``: it can).

    The checks a token from the token endpoint passes, applied to one read from a store:
    a shared store is not trusted to hold only what we wrote.
    """
    if len(token.access_token) > MAX_TOKEN_CHARS:
        return f"an access token of {len(token.access_token)} characters"
    if not header_safe(token.access_token) or not header_safe(token.token_type):
        return "characters that cannot go in an Authorization header"
    return None


def fingerprint(value: str | bytes) -> str:
    """A short, non-reversible fingerprint of a credential, for logs and cache keys.

    Twelve hex digits of SHA-256: enough to tell two tokens apart in a log, far too
    little to help anyone guess the value.
    """
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:12]


class _NoExtra(dict[str, Any]):
    """The ``extra`` of every token without extra members: one shared, read-only, empty
    dict instead of an empty dict per token (64 bytes each; tokens are cached by the
    hundred thousand). A ``dict`` subclass, so that msgspec encodes it and keeps sharing
    it as the default; a copy, a pickle or a decoded token gets a plain ``{}``."""

    __slots__ = ()

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise ConfigurationError(
            "this token has no extra members, and a token is read-only: build a new Token "
            "(msgspec.structs.replace(token, extra={...})) to attach some"
        )

    __setitem__ = __delitem__ = __ior__ = _read_only
    update = setdefault = pop = popitem = clear = _read_only

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[()]]:
        return dict, ()

    def __copy__(self) -> dict[str, Any]:
        return {}

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {}


NO_EXTRA: dict[str, Any] = _NoExtra()
"""The shared empty ``Token.extra`` (see ``_NoExtra``)."""


class Token(msgspec.Struct, frozen=True, kw_only=True):
    """An OAuth 2.0 access token with an absolute expiry.

    Attributes:
        access_token: the bearer credential itself. Never logged or shown in a repr.
        token_type: ``"Bearer"`` (normalised from any case), or the type the server gave.
        expires_at: Unix time (seconds) at which the server says the token expires.
        issued_at: Unix time at which the request for it was sent.
        scopes: the scopes granted (the requested ones when the server does not say).
        extra: any other members of the token response (``id_token``, vendor fields).
        dpop_key: for a DPoP-bound token (``token_type == "DPoP"``, RFC 9449), the key
            it is bound to, which signs the proof of every request (:meth:`dpop_proof`).
            Opaque: its repr shows only the thumbprint, and shared stores seal it with
            their cipher (and refuse it without one).
    """

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a password
    expires_at: float
    issued_at: float
    scopes: tuple[str, ...] = ()
    extra: dict[str, Any] = NO_EXTRA  # shared when empty: no dict per cached token
    dpop_key: DPoPKey | None = None

    @property
    def authorization(self) -> str:
        """The value for an HTTP ``Authorization`` header, e.g. ``"Bearer eyJ..."``
        (``"DPoP eyJ..."`` for a DPoP-bound token, RFC 9449 §7.1)."""
        return f"{self.token_type} {self.access_token}"

    def dpop_proof(self, method: str, url: str, *, nonce: str | None = None) -> str:
        """A fresh DPoP proof for sending this token with one request (RFC 9449 §7).

        Goes in the ``DPoP`` header next to ``Authorization: DPoP <token>``; it carries
        ``ath``, the hash of this token. The HTTP integrations do this by themselves.

        Raises:
            ConfigurationError: the token is not DPoP-bound (it has no ``dpop_key``).
        """
        if self.dpop_key is None:
            raise ConfigurationError(
                f"this token is not DPoP-bound (token_type {self.token_type!r}); it needs no proof"
            )
        return self.dpop_key.proof(method, url, access_token=self.access_token, nonce=nonce)

    @property
    def expires_in(self) -> float:
        """Seconds left until ``expires_at`` (negative once expired), by the wall clock."""
        return self.expires_at - time.time()

    @property
    def lifetime(self) -> float:
        """The whole lifetime the server granted, in seconds."""
        return self.expires_at - self.issued_at

    @property
    def fingerprint(self) -> str:
        """A short SHA-256 fingerprint of the access token, safe to log."""
        return fingerprint(self.access_token)

    @property
    def claims(self) -> Claims | None:
        """The access token's JWT claims, read *without* verification; ``None`` if opaque.

        Computed on first access and cached per token (a small bounded table), so code
        that never reads claims pays nothing. To trust the claims, verify the token with
        :class:`~tokenfleet.JWTVerifier` instead.
        """
        return read_claims(self.access_token)

    def is_expired(self, leeway: float = 0.0, *, now: float | None = None) -> bool:
        """Whether the token has expired, or will within ``leeway`` seconds."""
        current = time.time() if now is None else now
        return current >= self.expires_at - leeway

    def __repr__(self) -> str:
        return (
            f"Token(token_type={self.token_type!r}, access_token=<sha256:{self.fingerprint}>, "
            f"expires_at={self.expires_at:.3f}, scopes={self.scopes!r}"
            + (f", dpop_jkt={self.dpop_key.thumbprint!r})" if self.dpop_key else ")")
        )

    __str__ = __repr__

    def __rich_repr__(self) -> Any:  # pragma: no cover - only for users of rich
        yield "token_type", self.token_type
        yield "access_token", f"<sha256:{self.fingerprint}>"
        yield "expires_at", self.expires_at
        yield "scopes", self.scopes


class Secret:
    """A credential (client secret, private key) that refuses to be shown.

    ``reveal()`` gives the value back; ``repr``, ``str``, ``format``, ``%s`` logging and
    pickling never show it. Comparison is constant-time.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, (str, bytes)):
            raise ConfigurationError(
                f"Secret expects a str or bytes value, got {type(value).__name__}"
            )
        self._value = value

    def reveal(self) -> str | bytes:
        """Return the wrapped value. Keep the result out of logs and messages."""
        return self._value

    def reveal_str(self) -> str:
        """Return the wrapped value as text (bytes are decoded as UTF-8)."""
        value = self._value
        return value.decode() if isinstance(value, bytes) else value

    def reveal_bytes(self) -> bytes:
        """Return the wrapped value as bytes (text is encoded as UTF-8)."""
        value = self._value
        return value.encode() if isinstance(value, str) else value

    @property
    def fingerprint(self) -> str:
        """A short SHA-256 fingerprint, e.g. to tell a rotated secret apart in a cache key."""
        return fingerprint(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.reveal_bytes(), other.reveal_bytes())

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        raise ConfigurationError(
            "a tokenfleet.Secret cannot be pickled: pass the secret to the other process "
            "through its environment or a file instead"
        )

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self
