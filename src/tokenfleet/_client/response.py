"""The sans-I/O response side: RFC 6749 §5.1 tokens, §5.2 errors, ``Retry-After``.

Pure functions of their arguments (time comes in as a number), tested without a network.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from .._exceptions import (
    EndpointNotFound,
    InvalidClient,
    InvalidTokenResponse,
    OAuthError,
    RateLimited,
    ServerError,
    TokenEndpointError,
    oauth_error_class,
)
from .._jwt.claims import read_claims
from .._models import NO_EXTRA, Token, header_safe
from .._util.redact import printable, redact
from .._util.untrusted_json import UntrustedJSONError, load_object

__all__ = [
    "MAX_BODY_BYTES",
    "missing_scopes",
    "parse_error_response",
    "parse_retry_after",
    "parse_token_response",
]

MAX_BODY_BYTES = 1024 * 1024
"""Token responses larger than this are refused without reading further."""

MAX_LIFETIME = 10 * 365 * 24 * 3600.0
"""An ``expires_in`` beyond ten years is treated as a broken server, not a gift."""

_JSON_NUMBER = re.compile(r"[ \t]*-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[ \t]*")

# --------------------------------------------------------------------------- responses


class _TokenResponse(msgspec.Struct):
    """The RFC 6749 §5.1 wire shape (domain ``Token`` is built from it)."""

    access_token: str
    token_type: str
    expires_in: float | str | None = None
    scope: str | None = None


class _ErrorResponse(msgspec.Struct):
    """The RFC 6749 §5.2 wire shape; every member is optional in practice."""

    error: str | None = None
    error_description: str | None = None
    error_uri: str | None = None


_KNOWN = frozenset({"access_token", "token_type", "expires_in", "scope"})


def _looks_like_html(content_type: str, body: bytes) -> bool:
    return "html" in content_type.lower() or body.lstrip()[:1] == b"<"


def _decode_object(body: bytes, status: int, content_type: str) -> dict[str, Any]:
    if _looks_like_html(content_type, body):
        raise InvalidTokenResponse(
            f"the token endpoint answered HTTP {status} with an HTML page, not JSON: check "
            "token_url (is it a login page, or a proxy's error page?)",
            status=status,
        )
    try:
        return load_object(body)
    except UntrustedJSONError as exc:
        raise InvalidTokenResponse(
            f"the token endpoint answered HTTP {status} with a body that is not a JSON object "
            f"it can use ({exc}; {_short_type(content_type)}, {len(body)} bytes)",
            status=status,
        ) from None


def _short_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip() or "no Content-Type"


def parse_token_response(
    body: bytes,
    *,
    status: int = 200,
    content_type: str = "application/json",
    requested_scopes: tuple[str, ...],
    issued_at: float,
    default_lifetime: float,
) -> Token:
    """Turn a successful token response into a :class:`Token` (RFC 6749 §5.1).

    Raises:
        InvalidTokenResponse: the body is not a usable token response.
    """
    data = _decode_object(body, status, content_type)
    try:
        wire = msgspec.convert(data, _TokenResponse)
    except msgspec.ValidationError as exc:
        raise InvalidTokenResponse(
            f"the token response is not valid RFC 6749 §5.1: {exc}", status=status
        ) from None
    if not header_safe(wire.access_token):
        raise InvalidTokenResponse(
            "the token response has an empty access_token, or one with spaces, control or "
            "non-ASCII characters that cannot go in an Authorization header",
            status=status,
        )
    if not header_safe(wire.token_type):
        raise InvalidTokenResponse("the token response has an unusable token_type", status=status)
    # A JWT access token (RFC 9068) also says when it expires and what it grants. Decoding
    # costs a few microseconds against a network round trip, so it is always done here
    # (and cached, so ``token.claims`` is free afterwards); an opaque token gives None.
    claims = read_claims(wire.access_token)
    exp = claims.exp if claims is not None else None
    lifetime = _choose_lifetime(
        _lifetime(wire.expires_in, status), exp, issued_at, default_lifetime, status
    )
    if wire.scope is not None:
        scopes = tuple(dict.fromkeys(wire.scope.split()))
    elif claims is not None and claims.scopes:
        scopes = claims.scopes
    else:
        scopes = requested_scopes  # RFC 6749 §5.1: omitted means as requested
    token_type = "Bearer" if wire.token_type.lower() == "bearer" else wire.token_type
    extra = {k: v for k, v in data.items() if k not in _KNOWN} or NO_EXTRA  # shared empty
    return Token(
        access_token=wire.access_token,
        token_type=token_type,
        expires_at=issued_at + lifetime,
        issued_at=issued_at,
        scopes=scopes,
        extra=extra,
    )


def _lifetime(expires_in: float | str | None, status: int) -> float | None:
    if expires_in is None:
        return None
    try:
        # A string must spell a JSON number (RFC 8259 §6, ASCII): float() alone would also
        # take "١٢٠", "1_000" or "²" and read a number the server never sent.
        if isinstance(expires_in, str) and not _JSON_NUMBER.fullmatch(expires_in):
            raise ValueError(expires_in)
        value = float(expires_in)
    except ValueError:
        raise InvalidTokenResponse(
            f"expires_in {str(expires_in)[:40]!r} is not a number", status=status
        ) from None
    if not math.isfinite(value) or value <= 0 or value > MAX_LIFETIME:
        raise InvalidTokenResponse(
            f"expires_in {value!r} is not a plausible lifetime (expected 0 < expires_in <= "
            f"{MAX_LIFETIME:.0f} seconds)",
            status=status,
        )
    return value


def _choose_lifetime(
    expires_in: float | None,
    exp: float | None,
    issued_at: float,
    default: float,
    status: int,
) -> float:
    """The lifetime from ``expires_in`` and the JWT ``exp``: the earlier when both say.

    An ``exp`` that is already past by our clock, while ``expires_in`` is positive, says
    more about our clock than about the token (a server does not issue expired tokens),
    so ``expires_in`` wins then; with no ``expires_in`` such a token is refused.
    """
    from_exp = None if exp is None else exp - issued_at
    if from_exp is not None and from_exp > 0:
        from_exp = min(from_exp, MAX_LIFETIME)
        return from_exp if expires_in is None else min(expires_in, from_exp)
    if expires_in is not None:
        return expires_in
    if from_exp is not None:
        raise InvalidTokenResponse(
            f"the access token's exp claim is {-from_exp:.0f} s in the past and the response "
            "has no expires_in: the token is expired, or this host's clock is wrong",
            status=status,
        )
    return default


def missing_scopes(requested: Iterable[str], granted: Iterable[str]) -> tuple[str, ...]:
    """The requested scopes the server did not grant, in request order."""
    have = set(granted)
    return tuple(scope for scope in requested if scope not in have)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """``Retry-After`` in seconds from ``now``: delta-seconds or HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    # delta-seconds is 1*DIGIT, ASCII only (RFC 5234 B.1): str.isdigit() also accepts
    # "²" or "١٢", which float() then refuses or reads as a number nobody sent.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def parse_error_response(
    body: bytes,
    *,
    status: int,
    content_type: str,
    retry_after: float | None,
    scrub: Sequence[str] = (),
) -> TokenEndpointError:
    """The error to raise for a non-2xx token response (RFC 6749 §5.2).

    ``scrub`` lists sensitive values (secret, assertion) that must not appear in the
    message even if a broken server echoes them back.
    """
    fields = _error_fields(body, content_type)
    code = fields.error
    description = _clean(fields.error_description, scrub)
    kwargs: dict[str, Any] = {
        "status": status,
        "error": _clean(code, scrub),
        "error_description": description,
        "error_uri": _clean(fields.error_uri, scrub),
    }
    detail = f": {description}" if description else ""
    if status == 429:
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return RateLimited(
            f"the token endpoint is rate limiting us (HTTP 429{wait}){detail}",
            retry_after=retry_after,
            **kwargs,
        )
    if status >= 500:
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return ServerError(
            f"the token endpoint failed with HTTP {status} (server side{wait}){detail}",
            retry_after=retry_after,
            **kwargs,
        )
    if code:
        cls = oauth_error_class(code)
        return cls(
            f"the token endpoint refused the request: {kwargs['error']} (HTTP {status}){detail}",
            **kwargs,
        )
    if status == 401:
        return InvalidClient(
            "the token endpoint refused the client credentials (HTTP 401 without an error "
            "body): check client_id, the secret or key, and auth_method",
            **kwargs,
        )
    if status in (404, 405):
        return EndpointNotFound(
            f"no token endpoint at this path (HTTP {status}); check the path, or pass "
            "issuer= to discover the token endpoint (RFC 8414)",
            **kwargs,
        )
    return OAuthError(
        f"the token endpoint answered HTTP {status} without an RFC 6749 §5.2 error body "
        f"({_short_type(content_type)})",
        **kwargs,
    )


def _error_fields(body: bytes, content_type: str) -> _ErrorResponse:
    if not body or _looks_like_html(content_type, body):
        return _ErrorResponse()
    try:
        data = load_object(body)
    except UntrustedJSONError:
        return _ErrorResponse()
    return _ErrorResponse(
        error=_str_or_none(data.get("error")),
        error_description=_str_or_none(data.get("error_description")),
        error_uri=_str_or_none(data.get("error_uri")),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _clean(text: str | None, scrub: Sequence[str]) -> str | None:
    """Printable, bounded, and with no sensitive value echoed back."""
    if text is None:
        return None
    return printable(redact(text, scrub), 300)
