"""Ready-made client assertions (RFC 7521 §4.2): their type and their own expiry.

An assertion minted by someone else (the kubelet, a workload identity agent) is opaque
to us except for one thing we must respect: its ``exp``. It is read from the JWT's
payload *without verification* (only the server can verify it) so that an expired
assertion is never sent: that would cost a round trip and end in an opaque
``invalid_client`` (Azure's ``AADSTS700024``) instead of an error naming the file.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass
from typing import Any, NoReturn

from .._exceptions import ConfigurationError
from .._models import Secret, fingerprint
from .._util.untrusted_json import load_object

__all__ = [
    "EXPIRY_MARGIN",
    "JWT_BEARER",
    "JWT_SPIFFE",
    "Assertion",
    "check_type",
    "expired_message",
    "parse",
]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
JWT_SPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"  # SPIFFE client auth
# An assertion with less left than this is not sent: it could expire on the way.
EXPIRY_MARGIN = 0.5
_MAX_ASSERTION_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True, repr=False)
class Assertion:
    """One client assertion, wrapped, with its ``exp`` (None if it is not a JWT)."""

    value: Secret
    assertion_type: str
    expires_at: float | None
    fingerprint: str

    def expiring(self, now: float) -> bool:
        """Whether it expires within ``EXPIRY_MARGIN`` of ``now``."""
        return self.expires_at is not None and self.expires_at - EXPIRY_MARGIN <= now

    def __repr__(self) -> str:
        return f"Assertion(<sha256:{self.fingerprint}>, expires_at={self.expires_at})"

    def __reduce__(self) -> NoReturn:
        raise ConfigurationError("a client assertion cannot be pickled")


def check_type(assertion_type: object) -> str:
    """``client_assertion_type`` must be an absolute URI (RFC 7521 §4.2)."""
    if not isinstance(assertion_type, str) or ":" not in assertion_type:
        raise ConfigurationError(
            "assertion_type must be a URI such as "
            f"{JWT_BEARER!r} or {JWT_SPIFFE!r}, got {assertion_type!r}"
        )
    return assertion_type


def parse(data: bytes, assertion_type: str) -> Assertion:
    """Wrap an assertion and read its ``exp``; ``ConfigurationError`` says what is wrong."""
    if not data:
        raise ConfigurationError("is empty: has the token been written yet?")
    if len(data) > _MAX_ASSERTION_BYTES:
        raise ConfigurationError(f"is larger than {_MAX_ASSERTION_BYTES} bytes")
    if not data.isascii():  # checked, not caught: a UnicodeDecodeError carries the bytes
        raise ConfigurationError("is not ASCII text: is it the token file?")
    text = data.decode("ascii")
    expires_at = _jwt_exp(text) if "jwt" in assertion_type else None
    return Assertion(Secret(text), assertion_type, expires_at, fingerprint(text))


def _jwt_exp(text: str) -> float:
    parts = text.split(".")
    if len(parts) != 3:
        raise ConfigurationError("is not a JWT (three dot-separated parts): is it the token file?")
    claims = _payload(parts[1])
    if claims is None:
        # Raised outside the except block: no decoder error rides along as its context.
        raise ConfigurationError("has a JWT payload that is not base64url JSON")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        # RFC 7523 §3 item 4: the JWT MUST contain an exp claim.
        raise ConfigurationError("holds a JWT without a numeric exp claim (RFC 7523 §3)")
    return float(exp)


def _payload(segment: str) -> dict[str, Any] | None:
    try:
        return load_object(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):  # UntrustedJSONError is a ValueError
        return None


def expired_message(assertion: Assertion, now: float) -> str:
    """Why an assertion cannot be sent, and what to check."""
    assert assertion.expires_at is not None
    when = datetime.datetime.fromtimestamp(assertion.expires_at, datetime.UTC)
    ago = now - assertion.expires_at
    state = f"expired {ago:.0f} s ago" if ago >= 0 else f"expires in {-ago:.1f} s"
    return (
        f"holds an assertion that {state} (exp {when:%Y-%m-%d %H:%M:%S} UTC) and no newer one: "
        "check that its writer (kubelet projected volume, workload identity agent) is "
        "running and rotating it, and that this host's clock is right"
    )
