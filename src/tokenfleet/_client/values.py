"""Credential values and async callables as sources, and the factories that pick one.

A value never changes, so ``refresh()`` says so and ``invalid_client`` is not retried. A
callable (a vault, a secret manager) is asked before every token request; its result is
never logged, and an exception inside it becomes a ``CredentialError``.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .._exceptions import ConfigurationError, CredentialError
from .._jwt.dpop_key import b64url
from .._models import Secret
from . import assertions
from .auth import check_alg, secret_text
from .sources import (
    AssertionFile,
    AssertionSource,
    KeyFile,
    KeySource,
    LoadedKey,
    SecretFile,
    SecretSource,
    SourceInfo,
    Unpicklable,
    load_key,
)

__all__ = [
    "assertion_audience",
    "assertion_source",
    "certificate_thumbprint",
    "checked_audience",
    "checked_key",
    "checked_secret",
    "default_method",
    "key_source",
    "secret_source",
]


class _StaticSecret(Unpicklable):
    __slots__ = ("_secret",)

    def __init__(self, secret: Secret) -> None:
        self._secret = secret

    async def get(self) -> Secret:
        return self._secret

    async def refresh(self) -> bool:
        return False  # a value cannot change: retrying would only repeat the refusal

    def info(self) -> SourceInfo:
        return SourceInfo("client_secret", "value")


class _StaticKey(Unpicklable):
    __slots__ = ("_key",)

    def __init__(self, key: LoadedKey) -> None:
        self._key = key

    async def get(self) -> LoadedKey:
        return self._key

    async def refresh(self) -> bool:
        return False

    def info(self) -> SourceInfo:
        return SourceInfo("private_key", "value")


class _Callable(Unpicklable):
    """A user's async callable; its result is never logged, its errors become typed."""

    __slots__ = ("_fingerprint", "_fn", "name", "role")

    def __init__(self, fn: Callable[[], Any], role: str) -> None:
        self._fn = fn
        self.role = role
        self.name = str(getattr(fn, "__qualname__", type(fn).__name__))[:80]
        self._fingerprint: str | None = None

    async def call(self) -> object:
        try:
            result = self._fn()
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # noqa: BLE001 - any failure of user code becomes typed
            failure = type(exc).__name__
        else:
            return result
        # Raised outside the except block: the callable's exception may quote what it was
        # handling, so it must be neither the cause nor the context of ours.
        raise CredentialError(
            f"the {self.role} callable {self.name} raised {failure}; check the secret store "
            "it reads (its own logs say more)",
            source=self.name,
        )

    def fail(self, got: object, wanted: str) -> CredentialError:
        return CredentialError(
            f"the {self.role} callable {self.name} returned {type(got).__name__}; it must "
            f"return {wanted}",
            source=self.name,
        )

    def changed(self, new_fingerprint: str) -> bool:
        old, self._fingerprint = self._fingerprint, new_fingerprint
        return old != new_fingerprint

    def info(self) -> SourceInfo:
        return SourceInfo(self.role, "callable", self.name)


class _CallableSecret(_Callable):
    __slots__ = ("_pending",)

    def __init__(self, fn: Callable[[], Any], role: str) -> None:
        super().__init__(fn, role)
        self._pending: Secret | None = None

    async def get(self) -> Secret:
        secret, self._pending = self._pending, None
        if secret is None:
            secret = await self._ask()
            self.changed(secret.fingerprint)
        return secret

    async def refresh(self) -> bool:
        # The value asked for now is the one the retry uses: one call, not two.
        secret = await self._ask()
        if not self.changed(secret.fingerprint):
            return False
        self._pending = secret
        return True

    async def _ask(self) -> Secret:
        value = await self.call()
        if not isinstance(value, str | bytes | Secret) or not value:
            raise self.fail(value, "a non-empty str, bytes or tokenfleet.Secret")
        return Secret(value)


class _CallableAssertion(_Callable):
    __slots__ = ("_clock", "assertion_type")

    def __init__(self, fn: Callable[[], Any], clock: Callable[[], float]) -> None:
        super().__init__(fn, "client_assertion")
        self.assertion_type = assertions.JWT_BEARER
        self._clock = clock

    async def get(self) -> assertions.Assertion:
        value = await self.call()
        if isinstance(value, Secret):
            value = value.reveal_str()
        if not isinstance(value, str) or not value:
            raise self.fail(value, "the assertion as a non-empty str")
        try:
            current = assertions.parse(value.strip().encode(), self.assertion_type)
        except ConfigurationError as exc:
            problem = str(exc)
        else:
            return self._check_expiry(current)
        raise CredentialError(f"the {self.name} assertion {problem}", source=self.name)

    def _check_expiry(self, current: assertions.Assertion) -> assertions.Assertion:
        if current.expiring(self._clock()):
            message = assertions.expired_message(current, self._clock())
            raise CredentialError(f"the {self.name} assertion {message}", source=self.name)
        self.changed(current.fingerprint)
        return current

    async def refresh(self) -> bool:
        return True  # a callable may give a new assertion on the next call


def secret_source(value: object) -> SecretSource | None:
    """The source for ``client_secret=``: a value, a ``SecretFile`` or an async callable."""
    if value is None:
        return None
    if isinstance(value, SecretFile | _CallableSecret):
        return value
    if isinstance(value, str | bytes | Secret):
        return _StaticSecret(Secret(value))
    if callable(value):
        return _CallableSecret(value, "client_secret")
    raise ConfigurationError(
        "client_secret must be str, bytes, tokenfleet.Secret, tokenfleet.SecretFile or an "
        f"async callable, got {type(value).__name__}"
    )


def key_source(value: object) -> KeySource | None:
    """The source for ``private_key=``: PEM (str, bytes, Secret) or a ``KeyFile``."""
    if value is None:
        return None
    if isinstance(value, KeyFile):
        return value
    if isinstance(value, LoadedKey):
        return _StaticKey(value)
    if isinstance(value, str | bytes | Secret):
        return _StaticKey(load_key(Secret(value)))
    raise ConfigurationError(
        "private_key must be PEM (str, bytes, tokenfleet.Secret) or a tokenfleet.KeyFile, "
        f"got {type(value).__name__}"
    )


def assertion_source(
    value: object, clock: Callable[[], float] = time.time
) -> AssertionSource | None:
    """The source for ``client_assertion=``: an ``AssertionFile`` or an async callable."""
    if value is None:
        return None
    if isinstance(value, AssertionFile):
        return value
    if callable(value) and not isinstance(value, str | bytes):
        return _CallableAssertion(value, clock)
    raise ConfigurationError(
        "client_assertion must be a tokenfleet.AssertionFile or an async callable that "
        f"returns the assertion, got {type(value).__name__} (a fixed assertion would expire)"
    )


def default_method(private_key: object, assertion: object, tls_cert: object) -> str:
    """The auth method the given credentials imply (when ``auth_method`` is not given)."""
    if private_key is not None or assertion is not None:
        return "private_key_jwt"
    return "tls_client_auth" if tls_cert is not None else "client_secret_basic"


_SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


def checked_secret(value: object, method: str) -> SecretSource | None:
    """The secret's source; a value is checked now (a non-UTF-8 secret fails here)."""
    source = secret_source(value)
    if method in ("client_secret_basic", "client_secret_post") and isinstance(
        value, str | bytes | Secret
    ):
        secret_text(Secret(value))
    return source if method in _SECRET_METHODS else None


def checked_key(value: object, method: str, alg: str | None) -> KeySource | None:
    """The key's source; a PEM value is parsed and matched to ``alg`` now."""
    if method != "private_key_jwt":
        return None
    if isinstance(value, str | bytes | Secret):
        loaded = load_key(Secret(value))
        check_alg(loaded.key, alg)
        return key_source(loaded)
    return key_source(value)


def certificate_thumbprint(value: str | bytes | None, method: str) -> str | None:
    """The ``x5t#S256`` JWS header (RFC 7515 §4.1.8) for a PEM certificate: the base64url
    SHA-256 of its DER encoding. Microsoft Entra ID finds a certificate credential's
    public key by it."""
    if value is None:
        return None
    if method != "private_key_jwt":
        raise ConfigurationError(
            f"certificate= names the certificate of the private_key_jwt signing key; "
            f"auth_method is {method!r}"
        )
    if not isinstance(value, str | bytes):
        raise ConfigurationError("certificate must be a PEM certificate (str or bytes)")
    data = value.encode() if isinstance(value, str) else value
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigurationError(
            "certificate is not a PEM X.509 certificate (-----BEGIN CERTIFICATE-----)"
        ) from None
    return b64url(hashlib.sha256(cert.public_bytes(Encoding.DER)).digest())


def checked_audience(audience: str | None, issuer: str | None) -> str | None:
    """``assertion_audience=`` as given, checked: ``"issuer"`` needs an issuer."""
    if audience == "issuer" and issuer is None:
        raise ConfigurationError("assertion_audience='issuer' needs issuer=")
    if audience is not None and (not isinstance(audience, str) or not audience):
        raise ConfigurationError("assertion_audience must be a non-empty string")
    return audience


def assertion_audience(chosen: str | None, issuer: str | None, token_url: str) -> str:
    """``aud`` of the assertions we sign (RFC 7523 §3, RFC 7523bis §4).

    The issuer when we know it: an assertion whose audience is the issuer identifier
    is useless at any other server, which closes the audience-injection attack of
    CVE-2025-27370/27371. Without an issuer, the token endpoint (RFC 7523 §3).
    """
    if chosen == "token_endpoint" or (chosen is None and issuer is None):
        return token_url
    if chosen == "issuer" or chosen is None:
        assert issuer is not None
        return issuer
    return chosen
