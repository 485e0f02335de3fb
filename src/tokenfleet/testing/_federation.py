"""Federated client credentials: a client that trusts assertions from a workload issuer.

As Azure's federated identity credentials, Google's workload identity federation and
SPIFFE do: the client has no secret; it presents a JWT minted by another issuer (the
Kubernetes API server for a projected service-account token, a SPIFFE server) whose
``iss``, ``sub`` and ``aud`` the authorization server was told to trust (RFC 7523 §3).

Such a token is reused until it is rotated, so its ``jti`` (if any) is not checked for
replay; its ``exp`` is checked strictly, with no clock skew: a client that sends an
expired assertion is counted in ``DevAuthServer.assertion_rejections()``.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ._errors import invalid_client

__all__ = ["FederatedCredential", "WorkloadIssuer", "verify_federated"]


class WorkloadIssuer:
    """A stand-in for the Kubernetes API server (or a SPIFFE server) that mints assertions.

    Args:
        issuer: the ``iss`` of its tokens.
    """

    def __init__(self, issuer: str = "https://kubernetes.default.svc.cluster.local") -> None:
        self.issuer = issuer
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key_pem(self) -> bytes:
        """The public half, to register with the authorization server."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(
        self,
        subject: str,
        audience: str,
        lifetime: float = 3600.0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> str:
        """A signed ES256 assertion for ``subject``, valid ``lifetime`` seconds (rounded up)."""
        now = clock()
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": int(now),
            "nbf": int(now),
            "exp": math.ceil(now + lifetime),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm="ES256")

    def __repr__(self) -> str:
        return f"WorkloadIssuer({self.issuer!r})"


@dataclass(frozen=True, slots=True)
class FederatedCredential:
    """What a client trusts: assertions of ``issuer`` about ``subject`` for ``audience``."""

    issuer: str
    subject: str
    audience: str | None  # None: the server's issuer or token URL
    public_key: Any


def verify_federated(
    assertion: str,
    credential: FederatedCredential,
    audiences: tuple[str, ...],
    now: float,
    reject: Callable[[str], None],
) -> None:
    """Verify a federated assertion; ``reject(reason)`` counts it, then ``invalid_client``."""
    try:
        claims: Mapping[str, Any] = jwt.decode(
            assertion,
            credential.public_key,
            algorithms=["ES256", "RS256"],
            options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        _fail(reject, "signature", "federated assertion signature or format is invalid")
    if claims.get("iss") != credential.issuer or claims.get("sub") != credential.subject:
        _fail(reject, "subject", "federated assertion iss/sub is not the trusted one")
    wanted = (credential.audience,) if credential.audience else audiences
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(a in wanted for a in auds):
        _fail(reject, "audience", "federated assertion aud is not the trusted audience")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= now:
        _fail(reject, "expired", "federated assertion has expired")


def _fail(reject: Callable[[str], None], reason: str, message: str) -> NoReturn:
    reject(reason)
    raise invalid_client(message)
