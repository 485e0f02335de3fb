"""The sans-I/O request side: scope and parameter checks, the form, the cache key.

Pure functions of their arguments, tested without a network (see docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode, urlsplit

import msgspec
from yarl import URL

from .._exceptions import ConfigurationError

__all__ = [
    "build_form",
    "cache_key",
    "check_endpoint_url",
    "check_extra_params",
    "encode_form",
    "is_loopback",
    "normalize_resources",
    "normalize_scopes",
]

# RFC 6749 §3.3: scope-token = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
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
    raw: object = scopes
    if isinstance(raw, bytes | bytearray) or not isinstance(raw, Iterable):
        raise ConfigurationError(
            f"scopes must be a string or an iterable of strings, not {type(scopes).__name__}: "
            "pass e.g. 'orders:read' or ['orders:read']"
        )
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
        try:
            parts = urlsplit(item)
        except ValueError:  # a bad IPv6 literal: not a URI either
            parts = None
        if parts is None or not parts.scheme or parts.fragment:
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


def check_endpoint_url(
    url: str, *, allow_insecure_http: bool = False, what: str = "token_url"
) -> str:
    """Refuse anything but ``https`` unless the host is loopback or the user insists."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{what} must be a non-empty URL string")
    try:
        parts = urlsplit(url)
    except ValueError:  # a bad IPv6 literal, characters NFKC folds into URL syntax
        parts = None
    if parts is None or not _parses(url):
        raise ConfigurationError(f"{what} {url[:200]!r} is not a valid URL; check its host")
    try:
        parts.port  # noqa: B018 - validates: a port must be a number in 0-65535
    except ValueError:
        raise ConfigurationError(
            f"{what} {url!r} has an invalid port: use a number from 1 to 65535"
        ) from None
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        if allow_insecure_http or is_loopback(parts.hostname):
            return url
        raise ConfigurationError(
            f"{what} {url!r} is plain http: the client secret and the token would cross the "
            "network unencrypted. Use https, or pass allow_insecure_http=True for a test setup"
        )
    raise ConfigurationError(f"{what} {url!r} is not an absolute http(s) URL")


def _parses(url: str) -> bool:
    """Whether yarl, which every later use of the URL goes through (aiohttp, the token
    endpoint table), accepts it: its host rules are stricter than ``urlsplit``'s."""
    try:
        URL(url)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
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
    dpop: bool = False,
) -> str:
    """The full identity of a token: everything that can change what the server grants.

    Scopes, resources and extra params are order-insensitive sets. ``credential`` is a
    fingerprint, never the secret. ``dpop`` keeps DPoP-bound tokens apart from bearer
    ones; not the key itself, so processes with different keys share one token (and its
    key, which travels with it). The result is a readable prefix plus a hash:
    ``tokenfleet:v1:<client_id>:<hash>``.
    """
    parts: list[object] = [
        token_url,
        client_id,
        auth_method,
        credential,
        sorted(set(scopes)),
        audience,
        sorted(set(resources)),
        sorted(extra_params.items()),
    ]
    if dpop:  # appended only then: the keys of bearer tokens stay what they were
        parts.append("dpop")
    material = msgspec.json.encode(parts)
    digest = hashlib.sha256(material).hexdigest()[:32]
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", client_id)[:48]
    return f"tokenfleet:v1:{readable}:{digest}"
