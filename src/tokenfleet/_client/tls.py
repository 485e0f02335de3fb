"""The TLS client certificate of ``tls_client_auth`` (RFC 8705 §2), read from files.

The certificate and key files are watched like the other credential files (see
``sources``). A change builds a *new* ``ssl.SSLContext``: aiohttp pools connections per
context, so the next token request opens a connection that presents the new certificate
instead of reusing one made with the old.

The cache key follows the certificate's fingerprint (RFC 8705 §3: tokens may be bound to
it), so a change also bumps ``generation()``: a ``TokenManager`` asks for it before it
starts a fetch and then drops the keys it memoized (``tokenfleet.RotatingSource``).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .._exceptions import ConfigurationError, TokenFleetError
from .sources import SourceInfo
from .watched import WatchedFile

__all__ = ["TlsClientCert"]


class TlsClientCert:
    """A client certificate and key from files, with the trust settings of ``base``.

    Args:
        cert: PEM certificate (chain) file.
        key: PEM private key file (unencrypted).
        base: the context whose CA certificates and verification settings to keep (the
            certificates it loaded from a ``cafile``); None trusts the system's CAs.
    """

    def __init__(
        self,
        cert: str | os.PathLike[str],
        key: str | os.PathLike[str],
        base: ssl.SSLContext | None = None,
    ) -> None:
        self._cert = WatchedFile(cert, "TLS client certificate")
        self._key = WatchedFile(key, "TLS client key")
        self._base = base
        self._context: ssl.SSLContext | None = None
        self.fingerprint = ""
        self._not_after: float | None = None
        self._generation = 0
        self._load()  # fail at construction on a missing or bad file; gives the fingerprint

    def context(self) -> ssl.SSLContext:
        """The context for the next request: rebuilt if either file changed."""
        if self._context is None or self._cert.changed() or self._key.changed():
            self._load()
        assert self._context is not None
        return self._context

    def generation(self) -> int:
        """Checks the files (one ``stat`` each); a number that moves with the fingerprint.

        A file that cannot be loaded now is left to the fetch, which reads it again and
        raises its error in the flight (with the manager's backoff), not here.
        """
        try:
            self.context()
        except TokenFleetError:
            self._cert.forget()
        return self._generation

    def _load(self) -> None:
        pem = self._cert.read()
        self._key.read()  # for its signature; load_cert_chain reads it again by path
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise self._cert.fail("is not a PEM certificate") from None
        context = self._new_context()
        try:
            context.load_cert_chain(self._cert.path, self._key.path)
        except (ssl.SSLError, OSError) as exc:
            raise self._key.fail(
                f"does not go with {self._cert.path} or is not an unencrypted PEM key "
                f"({type(exc).__name__})"
            ) from None
        der = cert.public_bytes(Encoding.DER)
        fingerprint = hashlib.sha256(der).hexdigest()[:16]
        if fingerprint != self.fingerprint:
            self._generation += 1
        self.fingerprint = fingerprint
        self._not_after = cert.not_valid_after_utc.timestamp()
        self._context = context

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        base = self._base
        if base is not None:
            cas = base.get_ca_certs(binary_form=True)
            if cas:
                context.load_verify_locations(cadata=b"".join(cas))
            context.check_hostname = base.check_hostname
            context.verify_mode = base.verify_mode
        return context

    def info(self) -> SourceInfo:
        """The files' state and the certificate's notAfter, for ``tokenfleet check``."""
        problems = self._key.problems()
        if self._not_after is not None and self._not_after < _now():
            problems += (f"{self._cert.path} has expired: renew the certificate",)
        return SourceInfo(
            "tls_client_cert",
            "file",
            self._cert.path,
            self._cert.changed_at,
            self._not_after,
            problems,
        )

    def __reduce__(self) -> NoReturn:
        raise ConfigurationError("a TLS client certificate source cannot be pickled")

    def __repr__(self) -> str:
        return f"TlsClientCert({self._cert.path!r}, <sha256:{self.fingerprint}>)"


def _now() -> float:
    return datetime.datetime.now(datetime.UTC).timestamp()
