"""What the HTTP integrations share: where a bearer token may go (sans-I/O).

``tokenfleet.aiohttp`` and ``tokenfleet.httpx`` send a token only to the origins it is
meant for (RFC 6750 §5.3: bearer tokens must not be handed to the wrong party), never to
the token endpoint itself, and only over https unless the host is loopback (RFC 6750
§5.3, "always use TLS"). The rules live here once; the two modules only adapt them to
their client's request type.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import ClassVar

from yarl import URL

from ._client import endpoints
from ._client.dpop import ResourceDPoP
from ._client.endpoints import (
    Endpoint,
    Origin,
    TokenPaths,
    endpoint_of,
    endpoint_paths,
    is_noted,
    is_token_endpoint,
    normal_origin,
    origin_of,
)
from ._client.request import check_endpoint_url
from ._exceptions import ConfigurationError
from ._manager.manager import TokenManager
from ._models import Token
from ._util.bounded import MAX_KEYS, BoundedDict, make_room

__all__ = [
    "Bearer",
    "BearerAuthBase",
    "Decision",
    "Destinations",
    "FirstOrigin",
    "Origin",
    "TokenPaths",
    "check_origin",
    "default_origins",
    "endpoint_of",
    "is_endpoint",
    "origin_of",
    "parse_origins",
    "token_endpoint",
]

logger = logging.getLogger("tokenfleet")


def parse_origins(origins: str | Iterable[str], *, allow_insecure_http: bool) -> frozenset[Origin]:
    """Check and normalise the ``origins=`` argument: ``scheme://host[:port]``, no path.

    A path is refused rather than ignored: ``"https://api.example.com/v1"`` reads as if
    the token were kept to ``/v1``, and it would not be.
    """
    if isinstance(origins, str):
        origins = (origins,)
    parsed: set[Origin] = set()
    for text in origins:
        check_endpoint_url(text, allow_insecure_http=allow_insecure_http, what="origin")
        url = URL(text)
        if url.raw_path not in ("", "/") or url.raw_query_string or url.raw_fragment:
            raise ConfigurationError(
                f"origin {text!r} has a path, query or fragment: an origin is "
                f"scheme://host[:port], e.g. {str(url.origin())!r}"
            )
        parsed.add(origin_of(url))
    if not parsed:
        raise ConfigurationError("origins is empty: no request could ever get the token")
    return frozenset(parsed)


def check_origin(url: URL, *, allow_insecure_http: bool, what: str) -> Origin:
    """The origin of ``url`` after the https check (for origins not given by the user)."""
    check_endpoint_url(str(url.origin()), allow_insecure_http=allow_insecure_http, what=what)
    return origin_of(url)


def default_origins(manager: TokenManager, *, allow_insecure_http: bool) -> frozenset[Origin]:
    """The origins of the source's RFC 8707 resource indicators (http(s) ones only).

    A token requested for ``resource=https://api.example.com/`` is meant for that server
    (RFC 8707 §2), so that server's origin is the natural place to send it.
    """
    found: set[Origin] = set()
    for resource in manager.describe().resources:
        url = URL(resource)
        if url.scheme in ("http", "https") and url.raw_host:
            found.add(check_origin(url, allow_insecure_http=allow_insecure_http, what="resource"))
    return frozenset(found)


def token_endpoint(manager: TokenManager) -> Endpoint | None:
    """The ``(origin, path)`` of the token endpoint the manager's source describes."""
    token_url = manager.describe().token_url
    return endpoint_of(URL(token_url)) if token_url is not None else None


def is_endpoint(url: URL, endpoint: Endpoint | None) -> bool:
    """Whether ``url`` (query and fragment aside) is ``endpoint``, or the token endpoint
    of any client in this process (a wrapper source may describe none)."""
    if endpoint is None:
        return is_token_endpoint(url)
    found = endpoint_of(url)
    return found == endpoint or is_noted(found)


# What a request's origin decides, cached per origin (see Destinations.allows): refused,
# allowed, or allowed except for the token endpoints' paths.
Decision = bool | TokenPaths


class FirstOrigin:
    """Without any configured origin: the first origin asked for, and only that one.

    Trust on first use, as aiohttp's digest middleware does: a session that talks to one
    API (the common case, as in docs/integrations.md) just works, and a session that
    talks to several hosts does not hand the token to the others. A WARNING names the pinned
    origin once, so the choice is visible; ``origins=`` makes it explicit.
    """

    def __init__(self, integration: str, *, allow_insecure_http: bool) -> None:
        self._integration = integration
        self._insecure = allow_insecure_http
        self._origin: frozenset[Origin] | None = None

    def allowed(self, url: URL) -> frozenset[Origin]:
        """The pinned origin, pinning ``url``'s origin on the first call."""
        if self._origin is None:
            what = "the first origin asked for"
            self._origin = frozenset(
                {check_origin(url, allow_insecure_http=self._insecure, what=what)}
            )
            logger.warning(
                "tokenfleet.%s.BearerAuth: no origins= given; sending the token to %s only "
                "(the first origin asked for). Pass origins=[...] to choose explicitly",
                self._integration,
                url.origin(),
            )
        return self._origin


class Destinations:
    """Where one ``BearerAuth`` may send its token: the rules above, put together.

    ``origins=`` if given; else the source's RFC 8707 resources; else (aiohttp only) the
    session's ``base_url``, looked up per request; else the first origin asked for.
    """

    def __init__(
        self,
        integration: str,
        manager: TokenManager,
        origins: str | Iterable[str] | None,
        *,
        allow_insecure_http: bool,
    ) -> None:
        self.insecure = allow_insecure_http
        self.fixed = (
            parse_origins(origins, allow_insecure_http=allow_insecure_http)
            if origins is not None
            else default_origins(manager, allow_insecure_http=allow_insecure_http)
        )
        self.first = FirstOrigin(integration, allow_insecure_http=allow_insecure_http)
        self.endpoint = token_endpoint(manager)
        self._integration = integration
        self._refused: BoundedDict[str, None] = BoundedDict()  # origins already explained
        self._bases: BoundedDict[URL, frozenset[Origin]] = BoundedDict()
        # What each origin decides, cached (see allows): read on every request, so a
        # plain dict that make_room bounds (see bounded.py). Forgotten when a token
        # endpoint is noted.
        self.verdicts: dict[object, Decision] = {}
        endpoints.watch(self)

    def forget(self) -> None:
        """Drop every cached decision (a new token endpoint was noted)."""
        self.verdicts.clear()

    def _explain(self, url: URL, allowed: frozenset[Origin]) -> None:
        """Say once per origin why a request went out without the token (a bare 401 with
        no log line is hard to read)."""
        origin = str(url.origin())
        if origin in self._refused:
            return
        self._refused[origin] = None
        names = sorted(f"{s}://{h}:{p}" for s, h, p in allowed)
        logger.info(
            "tokenfleet.%s.BearerAuth: no token sent to %s: it is not among the allowed "
            "origins (%s); add it to origins= if it should get the token",
            self._integration,
            origin,
            ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""),
        )

    def allows(self, url: URL, base_url: URL | None = None, key: object = None) -> bool:
        """Whether a request to ``url`` (of a session with ``base_url``) gets the token.

        The origin decides almost everything (without fixed origins: the origin and
        ``base_url``, whose origin, like a pinned first origin, never changes), so the
        verdict is cached per ``key`` until a new token endpoint is noted. ``key`` is the
        caller's cheap stand-in for what decides, the same for equal ones: only a request
        to an origin that also serves a token endpoint pays for a path check (see
        :class:`TokenPaths`), every other one a dict lookup. A refusal is explained (once
        per origin) when it is decided, so a cached one costs nothing more either.
        """
        if key is None:
            key = origin_of(url) if self.fixed else (origin_of(url), base_url)
        if self.fixed:
            allowed = self.fixed
        else:
            allowed = self._of_base(base_url) if base_url is not None else self.first.allowed(url)
        table = self.verdicts
        decision = table.get(key)
        if decision is None:
            generation = endpoints.generation  # before the endpoints are read (see watch)
            decision = self._decide(url, allowed)
            if decision is False:
                if is_endpoint(url, self.endpoint):
                    # Not worth a word, nor a cache entry: the origin's next request
                    # (another path) is the one that gets explained.
                    return False
                self._explain(url, allowed)
            make_room(table, MAX_KEYS, key)
            table[key] = decision
            if endpoints.generation != generation:
                table.pop(key, None)  # decided on endpoints that changed meanwhile
        if decision is True or decision is False:
            return decision
        return not decision.excludes(url)  # never the token endpoint itself

    def _decide(self, url: URL, allowed: frozenset[Origin]) -> Decision:
        """Refused (``False``), allowed (``True``), or allowed but for these paths: the
        token endpoints at ``url``'s origin."""
        origin = origin_of(url)
        if origin not in allowed:
            return False
        normal = normal_origin(origin)
        paths = endpoint_paths(normal)
        if self.endpoint is not None and self.endpoint[0] == normal:
            paths |= {self.endpoint[1]}
        return TokenPaths(paths) if paths else True

    def _of_base(self, base_url: URL) -> frozenset[Origin]:
        """The allowed origins of a session with ``base_url`` (checked once per URL)."""
        allowed = self._bases.get(base_url)
        if allowed is None:
            what = "the ClientSession's base_url"
            origin = check_origin(base_url, allow_insecure_http=self.insecure, what=what)
            allowed = self._bases[base_url] = frozenset({origin})
        return allowed


class Bearer:
    """What both ``BearerAuth`` classes hold: the manager, how to ask it, where to send.

    Args:
        integration: ``"aiohttp"`` or ``"httpx"``, for messages.
        manager: where tokens come from.
        scopes: the scopes to ask for (made hashable: the manager caches keys per argument).
        origins: see :class:`Destinations`.
        min_ttl: the least life left a token may have (``TokenManager.get_token``).
        allow_insecure_http: permit plain http to a non-loopback origin.
    """

    def __init__(
        self,
        integration: str,
        manager: TokenManager,
        scopes: str | Iterable[str] | None,
        origins: str | Iterable[str] | None,
        *,
        min_ttl: float,
        allow_insecure_http: bool,
    ) -> None:
        if not min_ttl >= 0:
            raise ConfigurationError("min_ttl must be >= 0 seconds")
        self.manager = manager
        self.scopes = scopes if scopes is None or isinstance(scopes, str) else tuple(scopes)
        self.min_ttl = float(min_ttl)
        # get_token()'s hot branch read in place, without a call per request (see
        # _manager/hot.py), when that is all get_token() would do: default scopes, no
        # min_ttl, and the manager's own get_token (a subclass's may do more: then it
        # is called). The integrations read the manager's _hot and count the hit.
        plain = self.scopes is None and not self.min_ttl
        own = type(manager).get_token is TokenManager.get_token
        self.hot: TokenManager | None = manager if plain and own else None
        self.destinations = Destinations(
            integration, manager, origins, allow_insecure_http=allow_insecure_http
        )
        # What an aiohttp request reads first, one attribute away: the verdicts table
        # (the same dict for good: Destinations.forget clears it) and whether the
        # origins are fixed (else the session's base_url is part of the key).
        self.verdicts = self.destinations.verdicts
        self.fixed = bool(self.destinations.fixed)
        self.dpop = ResourceDPoP()  # proofs and nonces for DPoP-bound tokens (RFC 9449)
        # The last plain Bearer token and its header: one tuple, so that threads sharing
        # this object never read a token with another token's header.
        self.last: tuple[Token | None, str] = (None, "")

    def header(self, token: Token) -> str:
        """``token``'s ``Authorization`` value if it is a plain Bearer token (then kept in
        ``last``, so the next request with it builds nothing); ``""`` for DPoP."""
        if token.dpop_key is not None or token.token_type.lower() == "dpop":
            return ""  # ResourceDPoP.apply: a proof per request, or a ConfigurationError
        header = token.authorization
        self.last = (token, header)
        return header

    async def token(self) -> Token:
        """The token to send now."""
        return await self.manager.get_token(self.scopes, min_ttl=self.min_ttl)

    async def replacement(self, rejected: Token) -> Token | None:
        """After a 401: drop ``rejected``; a different token to retry with, or ``None``."""
        await self.manager.invalidate(rejected, self.scopes)  # its key even without a near cache
        fresh = await self.token()
        # The same token again means nothing newer exists: a retry would fail the same way.
        return None if fresh.access_token == rejected.access_token else fresh


class BearerAuthBase:
    """What ``tokenfleet.aiohttp.BearerAuth`` and ``tokenfleet.httpx.BearerAuth`` share:
    the constructor (see either class for its arguments), ``scopes``, ``min_ttl``, repr."""

    integration: ClassVar[str]  # "aiohttp" or "httpx", for messages

    def __init__(
        self,
        manager: TokenManager,
        scopes: str | Iterable[str] | None = None,
        *,
        origins: str | Iterable[str] | None = None,
        allow_insecure_http: bool = False,
        min_ttl: float = 0.0,
    ) -> None:
        self.manager = manager
        self._bearer = Bearer(
            self.integration,
            manager,
            scopes,
            origins,
            min_ttl=min_ttl,
            allow_insecure_http=allow_insecure_http,
        )

    @property
    def scopes(self) -> str | tuple[str, ...] | None:
        """The scopes asked for (``None``: the source's defaults)."""
        return self._bearer.scopes

    @property
    def min_ttl(self) -> float:
        """The least life left, in seconds, of a token this sends."""
        return self._bearer.min_ttl

    def __repr__(self) -> str:
        return f"BearerAuth(manager={self.manager!r}, scopes={self.scopes!r})"
