"""Authorization server metadata: RFC 8414, then OpenID Connect Discovery 1.0.

``ClientCredentials(issuer=...)`` and ``JWTVerifier(issuer=...)`` find the token endpoint
and the JWK Set here. The URL building and the document checks are pure functions; the
one async function, :func:`fetch_metadata`, GETs the candidate URLs in order;
:class:`IssuerMetadata` keeps its answer for a client and picks the token endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec
from yarl import URL

from .._exceptions import (
    ConfigurationError,
    DiscoveryError,
    IssuerMismatch,
    UnsupportedAuthMethod,
)
from .._util.bounded import BoundedDict
from .._util.untrusted_json import UntrustedJSONError, load_object
from .endpoints import endpoint_of
from .http import LazySession, send
from .request import check_endpoint_url
from .response import MAX_BODY_BYTES

__all__ = [
    "IssuerMetadata",
    "ServerMetadata",
    "check_auth_method",
    "check_endpoint",
    "check_issuer",
    "fetch_metadata",
    "get_json",
    "metadata_urls",
    "parse_metadata",
]

_RFC8414 = "/.well-known/oauth-authorization-server"
_OIDC = "/.well-known/openid-configuration"
logger = logging.getLogger("tokenfleet")


class ServerMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """Authorization server metadata (RFC 8414 §2), the members tokenfleet uses.

    Attributes:
        issuer: the issuer identifier, equal to the one asked for (checked).
        token_endpoint: the token endpoint URL (checked like ``token_url``).
        jwks_uri: the JWK Set URL, if the server publishes one.
        token_endpoint_auth_methods_supported: client authentication methods; RFC 8414
            §2 makes ``client_secret_basic`` the default when the member is absent.
        token_endpoint_auth_signing_alg_values_supported: JWS algorithms for
            ``client_secret_jwt`` / ``private_key_jwt`` assertions.
        grant_types_supported: the grant types, if listed.
        scopes_supported: the scopes, if listed.
        mtls_endpoint_aliases: RFC 8705 §5 endpoints for mutual-TLS clients.
        url: where the document was fetched from.
        extra: every other member of the document.
    """

    issuer: str
    token_endpoint: str
    jwks_uri: str | None = None
    token_endpoint_auth_methods_supported: tuple[str, ...] = ("client_secret_basic",)
    token_endpoint_auth_signing_alg_values_supported: tuple[str, ...] = ()
    grant_types_supported: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    mtls_endpoint_aliases: dict[str, str] = msgspec.field(default_factory=dict)
    url: str = ""
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class _Wire(msgspec.Struct):
    issuer: str
    token_endpoint: str
    jwks_uri: str | None = None
    token_endpoint_auth_methods_supported: list[str] | None = None
    token_endpoint_auth_signing_alg_values_supported: list[str] | None = None
    grant_types_supported: list[str] | None = None
    scopes_supported: list[str] | None = None
    mtls_endpoint_aliases: dict[str, str] | None = None


_KNOWN = frozenset(_Wire.__struct_fields__)


def check_issuer(issuer: str, *, allow_insecure_http: bool = False) -> str:
    """An issuer identifier: https (or loopback http), no query, no fragment (RFC 8414 §2)."""
    check_endpoint_url(issuer, allow_insecure_http=allow_insecure_http, what="issuer")
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or "#" in issuer:
        raise ConfigurationError(
            f"issuer {issuer!r} may not have a query or fragment (RFC 8414 §2)"
        )
    return issuer


def metadata_urls(issuer: str) -> tuple[str, str]:
    """Where to look, in order: RFC 8414 §3.1 (the well-known part inserted between host
    and path), then OpenID Connect Discovery §4 (appended to the issuer)."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit((parts.scheme, parts.netloc, _RFC8414 + path, "", ""))
    oidc = urlunsplit((parts.scheme, parts.netloc, path + _OIDC, "", ""))
    return rfc8414, oidc


def parse_metadata(
    body: bytes, *, issuer: str, url: str, allow_insecure_http: bool = False
) -> ServerMetadata:
    """Check and convert a metadata document fetched from ``url`` for ``issuer``.

    Raises:
        IssuerMismatch: the document's ``issuer`` is not exactly ``issuer`` (§3.3).
        DiscoveryError: not a JSON object, a required member missing, a bad endpoint.
    """
    try:
        data = load_object(body)
        wire = msgspec.convert(data, _Wire)
    except (UntrustedJSONError, msgspec.ValidationError) as exc:
        raise DiscoveryError(f"the metadata at {url} is not usable: {exc}") from None
    if wire.issuer != issuer:
        # RFC 8414 §3.3: the values MUST be identical, or the document must not be used.
        raise IssuerMismatch(
            f"the metadata at {url} is for issuer {wire.issuer!r}, not {issuer!r}: refusing "
            "it (mix-up protection, RFC 8414 §3.3). Configure the issuer exactly as the "
            "server spells it, trailing slash included",
            expected=issuer,
            actual=wire.issuer,
        )
    token_endpoint = check_endpoint(
        wire.token_endpoint, "token_endpoint", url, allow_insecure_http
    )
    jwks_uri = wire.jwks_uri and check_endpoint(
        wire.jwks_uri, "jwks_uri", url, allow_insecure_http
    )
    return ServerMetadata(
        issuer=wire.issuer,
        token_endpoint=token_endpoint,
        jwks_uri=jwks_uri,
        token_endpoint_auth_methods_supported=tuple(
            wire.token_endpoint_auth_methods_supported or ("client_secret_basic",)
        ),
        token_endpoint_auth_signing_alg_values_supported=tuple(
            wire.token_endpoint_auth_signing_alg_values_supported or ()
        ),
        grant_types_supported=tuple(wire.grant_types_supported or ()),
        scopes_supported=tuple(wire.scopes_supported or ()),
        mtls_endpoint_aliases=dict(wire.mtls_endpoint_aliases or {}),
        url=url,
        extra={k: v for k, v in data.items() if k not in _KNOWN},
    )


def check_endpoint(value: str, member: str, url: str, allow_insecure_http: bool) -> str:
    """An endpoint from a metadata document must pass the same https check as ours, and
    metadata fetched over https must name https endpoints only: anything else would let
    the document downgrade where the credentials go (RFC 8414 §2 requires https)."""
    # The scheme is what precedes the first ':' (RFC 3986 §3.1): no parsing of a value
    # that check_endpoint_url below may yet refuse as unparseable.
    if urlsplit(url).scheme == "https" and value.split(":", 1)[0].lower() != "https":
        raise DiscoveryError(
            f"the metadata at {url} is not usable: its {member} {value[:200]!r} is not https, "
            "and an https issuer's endpoints must be https"
        )
    try:
        return check_endpoint_url(
            value, allow_insecure_http=allow_insecure_http, what=f"the discovered {member}"
        )
    except ConfigurationError as exc:
        raise DiscoveryError(f"the metadata at {url} is not usable: {exc}") from None


def _origin(url: str) -> str:
    """The origin as the token endpoint table compares it (host folded, port explicit)."""
    scheme, host, port = endpoint_of(URL(url))[0]
    return f"{scheme}://{host}:{port}"


_said: BoundedDict[str, None] = BoundedDict()  # (issuer, origin) pairs already logged


def _note_token_origin(metadata: ServerMetadata) -> None:
    """A token endpoint on another origin than its issuer is allowed (RFC 8414 §2 says
    nothing against it) but is where the credentials go: say so, once per process."""
    origin = _origin(metadata.token_endpoint)
    if origin == _origin(metadata.issuer) or f"{metadata.issuer} {origin}" in _said:
        return
    _said[f"{metadata.issuer} {origin}"] = None
    logger.warning(
        "tokenfleet: the metadata of %s names a token endpoint on another origin (%s): the "
        "client credentials will be sent there; pass token_url= to pin it if unexpected",
        metadata.issuer,
        origin,
    )


def check_auth_method(metadata: ServerMetadata, auth_method: str) -> None:
    """Refuse an ``auth_method`` the server does not list (RFC 8414 §2).

    Raises:
        UnsupportedAuthMethod: naming the methods the server does support.
    """
    supported = metadata.token_endpoint_auth_methods_supported
    if auth_method not in supported:
        raise UnsupportedAuthMethod(
            f"auth_method {auth_method!r} is not supported by {metadata.issuer}: its metadata "
            f"lists {', '.join(supported)} (token_endpoint_auth_methods_supported)",
            auth_method=auth_method,
            supported=supported,
        )


async def get_json(
    session: aiohttp.ClientSession, url: str, *, ssl: Any = True
) -> tuple[int, bytes]:
    """GET ``url``; the status and the whole body (at most ``MAX_BODY_BYTES``).

    Raises:
        TransportError: the server could not be reached.
        DiscoveryError: the body is larger than the limit.
    """
    reply = await send(
        session,
        "GET",
        url,
        what="the authorization server at",
        limit=MAX_BODY_BYTES,
        too_large=lambda _, message: DiscoveryError(f"{url}: {message}; stopped reading"),
        headers={"Accept": "application/json"},
        ssl=ssl,
    )
    return reply.status, reply.body


async def fetch_metadata(
    session: aiohttp.ClientSession,
    issuer: str,
    *,
    allow_insecure_http: bool = False,
    ssl: Any = True,
) -> ServerMetadata:
    """GET the metadata of ``issuer``: RFC 8414 first, then OpenID Connect Discovery.

    A URL that answers with an error status or a non-JSON body is skipped; a document
    for another issuer is refused at once (it must not be used, RFC 8414 §3.3).

    Raises:
        IssuerMismatch, DiscoveryError, TransportError.
    """
    tried: list[str] = []
    for url in metadata_urls(issuer):
        status, body = await get_json(session, url, ssl=ssl)
        if status != 200:
            tried.append(f"{url}: HTTP {status}")
            continue
        try:
            metadata = parse_metadata(
                body, issuer=issuer, url=url, allow_insecure_http=allow_insecure_http
            )
        except IssuerMismatch:
            raise
        except DiscoveryError as exc:
            tried.append(str(exc))
            continue
        _note_token_origin(metadata)
        return metadata
    raise DiscoveryError(f"no usable metadata for issuer {issuer!r}: {_join(tried)}")


def _join(reasons: Sequence[str]) -> str:
    return "; ".join(reasons)


class IssuerMetadata:
    """An issuer's metadata, fetched once (concurrent first fetches wait for one), and
    the token endpoint it names for an auth method."""

    def __init__(
        self,
        http: LazySession,
        issuer: str,
        *,
        allow_insecure_http: bool,
        ssl: ssl.SSLContext | bool,
    ) -> None:
        self._http = http
        self.issuer = issuer
        self._insecure = allow_insecure_http
        self._ssl = ssl
        self._metadata: ServerMetadata | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> ServerMetadata:
        """The metadata (see :func:`fetch_metadata`), fetched on the first call."""
        if self._metadata is not None:
            return self._metadata
        async with self._lock:  # single flight: concurrent first fetches wait
            if self._metadata is None:
                self._metadata = await fetch_metadata(
                    self._http.get(),
                    self.issuer,
                    allow_insecure_http=self._insecure,
                    ssl=self._ssl,
                )
            return self._metadata

    async def token_endpoint(self, auth_method: str) -> str:
        """The token endpoint for ``auth_method``, which the metadata must list."""
        metadata = await self.get()
        check_auth_method(metadata, auth_method)
        if auth_method == "tls_client_auth":
            # RFC 8705 §5: mutual-TLS clients use the alias when the server names one.
            alias = metadata.mtls_endpoint_aliases.get("token_endpoint")
            if alias:
                return check_endpoint(alias, "mtls token_endpoint", metadata.url, self._insecure)
        return metadata.token_endpoint
