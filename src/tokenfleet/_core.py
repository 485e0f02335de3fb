"""The sans-I/O core: request building, response parsing, cache keys, expiry arithmetic.

Everything here is a pure function of its arguments (time comes in as a number), so it is
tested without a network or a clock. The I/O shell (``_client``, ``_manager``) calls it.
"""

from __future__ import annotations

import email.utils
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec

from ._exceptions import (
    ConfigurationError,
    InvalidClient,
    InvalidTokenResponse,
    OAuthError,
    RateLimited,
    ServerError,
    TokenEndpointError,
    oauth_error_class,
)
from ._jwt import read_claims
from ._models import Token

__all__ = [
    "MAX_BODY_BYTES",
    "build_form",
    "cache_key",
    "check_token_url",
    "missing_scopes",
    "normalize_resources",
    "normalize_scopes",
    "parse_error_response",
    "parse_retry_after",
    "parse_token_response",
    "schedule",
]

MAX_BODY_BYTES = 1024 * 1024
"""Token responses larger than this are refused without reading further."""

MAX_LIFETIME = 10 * 365 * 24 * 3600.0
"""An ``expires_in`` beyond ten years is treated as a broken server, not a gift."""

# RFC 6749 §3.3: scope-token = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RFC 6750 §2.1 b64token, widened to any visible ASCII: what matters is that the value
# cannot break an HTTP header (no spaces, CR, LF or non-ASCII).
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
_RESERVED_PARAMS = frozenset(
    {
        "grant_type",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "scope",
        "audience",
        "resource",
    }
)
_LOOPBACK_HOSTS = frozenset({"localhost", "::1", "[::1]"})


# --------------------------------------------------------------------------- input


def normalize_scopes(scopes: str | Iterable[str] | None) -> tuple[str, ...]:
    """Scopes as a de-duplicated tuple in first-seen order.

    A string is split on whitespace (``"a b"`` is two scopes), as is each item of an
    iterable. Each scope must be an RFC 6749 §3.3 scope-token.
    """
    if scopes is None:
        return ()
    items = [scopes] if isinstance(scopes, str) else scopes
    seen: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(
                f"scopes must be strings, got {type(item).__name__}: pass e.g. ['orders:read']"
            )
        for scope in item.split():
            if not _SCOPE_TOKEN.fullmatch(scope):
                raise ConfigurationError(
                    f"scope {scope!r} has characters RFC 6749 §3.3 does not allow "
                    "(quotes, backslashes, control or non-ASCII characters)"
                )
            seen[scope] = None
    return tuple(seen)


def normalize_resources(resource: str | Sequence[str] | None) -> tuple[str, ...]:
    """RFC 8707 resource indicators: absolute URIs without a fragment."""
    if resource is None:
        return ()
    items = [resource] if isinstance(resource, str) else list(resource)
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(f"resource must be a str, got {type(item).__name__}")
        parts = urlsplit(item)
        if not parts.scheme or parts.fragment:
            raise ConfigurationError(
                f"resource {item!r} must be an absolute URI without a fragment (RFC 8707 §2)"
            )
    return tuple(dict.fromkeys(items))


def check_extra_params(extra_params: Mapping[str, str] | None) -> dict[str, str]:
    """Validate user-supplied extra form parameters (they may not shadow ours)."""
    if not extra_params:
        return {}
    result: dict[str, str] = {}
    for name, value in extra_params.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError("extra_params must map str to str")
        if name in _RESERVED_PARAMS:
            raise ConfigurationError(
                f"extra_params may not set {name!r}: use the dedicated argument instead"
            )
        result[name] = value
    return result


def check_token_url(
    url: str, *, allow_insecure_http: bool = False, what: str = "token_url"
) -> str:
    """Refuse anything but ``https`` unless the host is loopback or the user insists."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{what} must be a non-empty URL string")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        if allow_insecure_http or _is_loopback(parts.hostname):
            return url
        raise ConfigurationError(
            f"{what} {url!r} is plain http: the client secret and the token would cross the "
            "network unencrypted. Use https, or pass allow_insecure_http=True for a test setup"
        )
    raise ConfigurationError(f"{what} {url!r} is not an absolute http(s) URL")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    octets = host.split(".")
    return len(octets) == 4 and octets[0] == "127" and all(o.isdigit() for o in octets)


def build_form(
    scopes: Sequence[str],
    audience: str | None,
    resources: Sequence[str],
    extra_params: Mapping[str, str],
) -> list[tuple[str, str]]:
    """The RFC 6749 §4.4.2 request parameters (client authentication is added separately)."""
    form = [("grant_type", "client_credentials")]
    if scopes:
        form.append(("scope", " ".join(scopes)))
    if audience:
        form.append(("audience", audience))
    form.extend(("resource", resource) for resource in resources)
    form.extend(extra_params.items())
    return form


def encode_form(form: Sequence[tuple[str, str]]) -> bytes:
    """``application/x-www-form-urlencoded`` body bytes."""
    return urlencode(form).encode("ascii")


# --------------------------------------------------------------------------- cache key


def cache_key(
    *,
    token_url: str,
    client_id: str,
    auth_method: str,
    credential: str,
    scopes: Iterable[str],
    audience: str | None,
    resources: Iterable[str],
    extra_params: Mapping[str, str],
) -> str:
    """The full identity of a token: everything that can change what the server grants.

    Scopes, resources and extra params are order-insensitive sets. ``credential`` is a
    fingerprint, never the secret. The result is a readable prefix plus a hash:
    ``tokenfleet:v1:<client_id>:<hash>``.
    """
    material = msgspec.json.encode(
        [
            token_url,
            client_id,
            auth_method,
            credential,
            sorted(set(scopes)),
            audience,
            sorted(set(resources)),
            sorted(extra_params.items()),
        ]
    )
    digest = hashlib.sha256(material).hexdigest()[:32]
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", client_id)[:48]
    return f"tokenfleet:v1:{readable}:{digest}"


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
_json_object = msgspec.json.Decoder(dict[str, Any])


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
        return _json_object.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 is not a DecodeError
        raise InvalidTokenResponse(
            f"the token endpoint answered HTTP {status} with a body that is not a JSON object "
            f"({_short_type(content_type)}, {len(body)} bytes)",
            status=status,
        ) from exc


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
    if not wire.access_token or not _HEADER_SAFE.fullmatch(wire.access_token):
        raise InvalidTokenResponse(
            "the token response has an empty access_token, or one with spaces, control or "
            "non-ASCII characters that cannot go in an Authorization header",
            status=status,
        )
    if not wire.token_type or not _HEADER_SAFE.fullmatch(wire.token_type):
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
    extra = {k: v for k, v in data.items() if k not in _KNOWN}
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
    if value.isdigit():
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
        return ServerError(
            f"the token endpoint failed with HTTP {status} (server side; will be retried){detail}",
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
    return OAuthError(
        f"the token endpoint answered HTTP {status} without an RFC 6749 §5.2 error body "
        f"({_short_type(content_type)})",
        **kwargs,
    )


def _error_fields(body: bytes, content_type: str) -> _ErrorResponse:
    if not body or _looks_like_html(content_type, body):
        return _ErrorResponse()
    try:
        data = _json_object.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
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
    for value in scrub:
        if value and value in text:
            text = text.replace(value, "[redacted]")
    return "".join(ch if ch.isprintable() else "?" for ch in text[:300])


# --------------------------------------------------------------------------- expiry


def schedule(
    token: Token,
    *,
    leeway: float,
    refresh_ratio: float,
    jitter: float = 0.0,
) -> tuple[float, float]:
    """``(usable_until, refresh_at)`` for a token, in Unix seconds.

    * usable until ``expires_at - leeway``, where the leeway shrinks to a tenth of the
      lifetime for short-lived tokens (a 5 s token stays usable for 4.5 s);
    * refreshed ahead from ``issued_at + refresh_ratio * lifetime``, moved earlier by
      ``jitter`` (a fraction of the lifetime, drawn by the caller) so a fleet spreads out,
      and never later than ``usable_until``.
    """
    lifetime = max(token.expires_at - token.issued_at, 0.0)
    usable_until = token.expires_at - min(leeway, lifetime * 0.1)
    refresh_at = token.issued_at + lifetime * (refresh_ratio - jitter)
    return usable_until, min(refresh_at, usable_until)
