"""Credential sources: where a secret, a private key or a client assertion comes from.

A source is asked for its value only when a token request is about to be sent, never on
the hot path of ``TokenManager.get_token``. File sources then ``stat`` their path and
read the file again when its identity changed, so a credential rotated on disk is
used by the next fetch without a restart:

* the path is resolved (``os.stat`` follows symlinks), so the Kubernetes layout, where a
  projected or secret volume swaps a ``..data`` symlink atomically and the file's own
  mtime may not move, is seen as a new inode;
* an in-place rewrite moves mtime/ctime/size; a ``rename`` over the path moves the inode.

After the token endpoint answers ``invalid_client`` the client calls ``refresh()``: the
file is read once more even if its metadata looks unchanged, and the request is retried
once if the value changed (``TokenExchange.once``).

Files are opened non-blocking and must be regular files (a FIFO planted in place of a
secret cannot block the event loop); nothing read is ever logged or put in a message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from .._exceptions import ConfigurationError
from .._models import Secret, fingerprint
from . import assertions
from .watched import WatchedFile

__all__ = [
    "AssertionFile",
    "AssertionSource",
    "KeyFile",
    "KeySource",
    "LoadedKey",
    "SecretFile",
    "SecretSource",
    "SourceInfo",
    "Unpicklable",
    "load_key",
    "refuse_pickle",
]

SecretCallable = Callable[[], Awaitable[str | bytes | Secret]]
AssertionCallable = Callable[[], Awaitable[str | Secret]]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What ``tokenfleet check`` reports about one credential (never the credential).

    Attributes:
        role: ``client_secret``, ``private_key``, ``client_assertion`` or ``tls_client_cert``.
        kind: ``value``, ``file`` or ``callable``.
        where: the file path or the callable's name (empty for a value).
        changed_at: Unix time the file last changed (its mtime), if known.
        expires_at: the assertion's ``exp`` or the certificate's ``notAfter``, if known.
        problems: what to fix, one sentence each.
    """

    role: str
    kind: str
    where: str = ""
    changed_at: float | None = None
    expires_at: float | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, repr=False)
class LoadedKey:
    """A private key object and the fingerprint of its public half (safe to show)."""

    key: Any
    fingerprint: str

    def __repr__(self) -> str:
        return f"LoadedKey(<sha256:{self.fingerprint}>)"

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)


class SecretSource(Protocol):
    """Gives the client secret for the next request."""

    async def get(self) -> Secret: ...
    async def refresh(self) -> bool: ...
    def info(self) -> SourceInfo: ...


class KeySource(Protocol):
    """Gives the private key for the next ``private_key_jwt`` assertion."""

    async def get(self) -> LoadedKey: ...
    async def refresh(self) -> bool: ...
    def info(self) -> SourceInfo: ...


class AssertionSource(Protocol):
    """Gives a ready-made client assertion (RFC 7521 §4.2) for the next request."""

    assertion_type: str

    async def get(self) -> assertions.Assertion: ...
    async def refresh(self) -> bool: ...
    def info(self) -> SourceInfo: ...


def refuse_pickle(obj: object) -> NoReturn:
    """What every object that holds or reads a credential does when pickled."""
    raise ConfigurationError(
        f"a tokenfleet {type(obj).__name__} cannot be pickled (it holds or reads a "
        "credential): build the client in each process from its environment or files"
    )


class Unpicklable:
    __slots__ = ()

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)


class SecretFile(Unpicklable):
    """A client secret read from a file, re-read when the file changes.

    The trailing newline (``\\n`` or ``\\r\\n``) is stripped. The file is checked with
    one ``stat`` only when a token request is about to be sent, and read once more after
    the server answers ``invalid_client`` (the request is then retried once with the new
    value). Give it as ``ClientCredentials(client_secret=SecretFile(path))``.

    Args:
        path: the file; a Kubernetes secret volume's file works as mounted.
    """

    __slots__ = ("_file", "_secret")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = WatchedFile(path, "client secret")
        self._secret: Secret | None = None

    @property
    def path(self) -> str:
        """The path as given."""
        return self._file.path

    async def get(self) -> Secret:
        """The current secret (read again if the file changed)."""
        if self._secret is None or self._file.changed():
            self._secret = self._load()
        return self._secret

    async def refresh(self) -> bool:
        """Read the file now; whether the secret differs from the one used before."""
        old, self._secret = self._secret, self._load()
        return old is None or old != self._secret

    def _load(self) -> Secret:
        data = self._file.read()
        value = data[:-2] if data.endswith(b"\r\n") else data.removesuffix(b"\n")
        if not value:
            raise self._file.fail("is empty: write the client secret into it")
        return Secret(value)

    def info(self) -> SourceInfo:
        """The file's state for ``tokenfleet check``."""
        return _file_info("client_secret", self._file, None)

    def __repr__(self) -> str:
        return f"SecretFile({self.path!r})"


class KeyFile(Unpicklable):
    """A PEM private key for ``private_key_jwt``, re-read when the file changes.

    Args:
        path: the PEM file (PKCS#8 or traditional; encrypted with ``password``).
        password: the key's password, if it is encrypted.
    """

    __slots__ = ("_file", "_key", "_password")

    def __init__(
        self, path: str | os.PathLike[str], password: str | bytes | Secret | None = None
    ) -> None:
        self._file = WatchedFile(path, "private key")
        self._password = None if password is None else Secret(password)
        self._key: LoadedKey | None = None

    @property
    def path(self) -> str:
        """The path as given."""
        return self._file.path

    async def get(self) -> LoadedKey:
        """The current key (read and parsed again if the file changed)."""
        if self._key is None or self._file.changed():
            self._key = self._load()
        return self._key

    async def refresh(self) -> bool:
        """Read the file now; whether the key differs from the one used before."""
        old, self._key = self._key, self._load()
        return old is None or old.fingerprint != self._key.fingerprint

    def _load(self) -> LoadedKey:
        data = Secret(self._file.read())
        password = self._password.reveal_bytes() if self._password else None
        try:
            return load_key(data, password)
        except ConfigurationError as exc:
            problem = str(exc).removeprefix("private_key ")
        raise self._file.fail(problem)

    def info(self) -> SourceInfo:
        """The file's state for ``tokenfleet check``."""
        return _file_info("private_key", self._file, None)

    def __repr__(self) -> str:
        return f"KeyFile({self.path!r})"


def load_key(pem: Secret, password: bytes | None = None) -> LoadedKey:
    """Parse a PEM private key; a typed error (without key material) if it is not one."""
    try:
        key = load_pem_private_key(pem.reveal_bytes(), password=password)
    except (ValueError, TypeError) as exc:
        # TypeError: a password for an unencrypted key, or none for an encrypted one.
        failure = type(exc).__name__
    else:
        spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return LoadedKey(key, fingerprint(spki))
    # Raised outside the except block: the parser's error never rides along.
    raise ConfigurationError(
        "private_key is not an unencrypted PEM private key (PKCS#8 or traditional), or "
        f"not one this password opens; the parser said: {failure}"
    )


class AssertionFile(Unpicklable):
    """A ready-made client assertion (RFC 7521/7523) read from a file.

    For Kubernetes projected service-account tokens, ``AZURE_FEDERATED_TOKEN_FILE``,
    ``AWS_WEB_IDENTITY_TOKEN_FILE`` and SPIFFE JWT-SVIDs. Read again when the file
    changes, and never sent past its own ``exp`` (read from the JWT, not verified): an
    assertion with less than half a second left is read again, and if the file still
    holds an expired one the fetch fails with a ``CredentialError`` naming the file.

    Args:
        path: the file the kubelet (or the agent) writes.
        assertion_type: the ``client_assertion_type``: ``jwt-bearer`` (RFC 7523, the
            default) or ``urn:ietf:params:oauth:client-assertion-type:jwt-spiffe``.
        clock: Unix-time clock, injectable for tests.
    """

    __slots__ = ("_clock", "_current", "_file", "assertion_type")

    def __init__(
        self,
        path: str | os.PathLike[str],
        assertion_type: str = assertions.JWT_BEARER,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._file = WatchedFile(path, "client assertion")
        self.assertion_type = assertions.check_type(assertion_type)
        self._clock = clock
        self._current: assertions.Assertion | None = None

    @property
    def path(self) -> str:
        """The path as given."""
        return self._file.path

    async def get(self) -> assertions.Assertion:
        """The current assertion; read again if the file changed or it is about to expire."""
        current = self._current
        if current is None or self._file.changed() or current.expiring(self._clock()):
            current = self._current = self._load()
        if current.expiring(self._clock()):
            raise self._file.fail(assertions.expired_message(current, self._clock()))
        return current

    async def refresh(self) -> bool:
        """Read the file now; whether the assertion differs from the one used before."""
        old, self._current = self._current, self._load()
        return old is None or old.fingerprint != self._current.fingerprint

    def _load(self) -> assertions.Assertion:
        data = self._file.read().strip()
        try:
            return assertions.parse(data, self.assertion_type)
        except ConfigurationError as exc:
            problem = str(exc)
        raise self._file.fail(problem)

    def info(self) -> SourceInfo:
        """The file's state and the assertion's expiry, for ``tokenfleet check``."""
        return _file_info("client_assertion", self._file, self._current)

    def __repr__(self) -> str:
        return f"AssertionFile({self.path!r}, assertion_type={self.assertion_type!r})"


def _file_info(role: str, file: WatchedFile, current: assertions.Assertion | None) -> SourceInfo:
    problems = file.problems()
    expires_at = current.expires_at if current else None
    return SourceInfo(role, "file", file.path, file.changed_at, expires_at, problems)
