"""aiohttp client middleware: bearer tokens from a :class:`~tokenfleet.TokenManager`.

```python
async with aiohttp.ClientSession(
    base_url="https://api.example.com",
    middlewares=[tokenfleet.aiohttp.BearerAuth(tokens)],
) as http:
    async with http.get("/orders") as response:
        ...
```

Needs aiohttp >= 3.12 for client middlewares; tokenfleet requires >= 3.13.4 (see
``docs/security.md``, "Dependency floors"). See ``docs/integrations.md``.
"""

from __future__ import annotations

from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, hdrs, payload
from yarl import URL

from ._bearer import BearerAuthBase, Decision, TokenPaths
from ._client.http import is_own_request
from ._models import Token

__all__ = ["BearerAuth"]

AUTHORIZATION = hdrs.AUTHORIZATION


class BearerAuth(BearerAuthBase):
    """An aiohttp client middleware that authenticates requests with a bearer token.

    A plain callable matching ``aiohttp.ClientMiddlewareType``: pass it to
    ``ClientSession(middlewares=[...])`` or to one request (``middlewares=[...]``).

    For each request to an allowed origin it sets ``Authorization`` from
    ``manager.get_token(scopes)`` (RFC 6750 §2.1). On a ``401`` (with or without
    ``WWW-Authenticate: Bearer error="invalid_token"``, RFC 6750 §3.1) it invalidates
    *that* token, releases the response and sends the request once more with a fresh
    token; a second ``401`` is returned as it is. Because invalidation is
    compare-and-delete, a burst of 401s for one revoked token costs one token request.

    A DPoP-bound token (``ClientCredentials(dpop=...)``, RFC 9449) goes as
    ``Authorization: DPoP <token>`` with a fresh ``DPoP`` proof per request (``htm``,
    ``htu``, ``ath``), never as ``Bearer``. A ``401`` with ``WWW-Authenticate: DPoP
    error="use_dpop_nonce"`` and a new ``DPoP-Nonce`` is retried once with that nonce
    (remembered per origin, and updated from every ``DPoP-Nonce`` header); other 401s
    follow the rule above.

    Requests it leaves alone (sent unchanged, no token fetched):

    * requests to an origin that is not allowed (see ``origins``);
    * the requests tokenfleet makes for itself (token, discovery, JWKS), whichever
      client or verifier sends them on this session: a session shared with an
      ``issuer=`` client cannot wait on itself;
    * requests to the manager's token endpoint;
    * requests that already carry an ``Authorization`` header: an explicit credential
      wins.

    A request whose body cannot be sent twice (an async iterable, a stream, a file
    object, multipart) is not retried: its ``401`` is returned, after the token has been
    invalidated, so the caller's own retry gets a fresh one. Bodies given as ``bytes``,
    ``str``, ``json=`` or a urlencoded form are retried.

    Args:
        manager: where tokens come from.
        scopes: the scopes to ask the manager for (``None``: the source's defaults).
        origins: ``scheme://host[:port]`` values allowed to receive the token. When not
            given: the origins of the source's RFC 8707 ``resource`` indicators if it has
            any, otherwise the ``base_url`` of the request's ``ClientSession``, otherwise
            the first origin a request goes to, and only that one (logged once as a
            WARNING): a session that talks to several hosts never hands the token to
            the others.
        min_ttl: ask the manager for a token that stays valid this many more seconds
            (see ``TokenManager.get_token``): set it to the longest a request may wait
            for a pooled connection, so the token cannot expire in the queue.
        allow_insecure_http: permit sending the token over plain http to a non-loopback
            host. RFC 6750 §5.3 requires TLS; only for test setups.

    Raises:
        ConfigurationError: an origin is not ``scheme://host[:port]``, or is plain http
            to a non-loopback host without ``allow_insecure_http``.
    """

    integration = "aiohttp"

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        """Authenticate ``request`` if it is meant to be, and retry it once after a 401."""
        # Per-request CPU matters here (benchmarks/ scenario 9): the common case reads the
        # origin's cached verdict and the token's ready-made header, and builds nothing.
        if (
            is_own_request()  # tokenfleet's own token, metadata or JWKS request: never recurse
            or AUTHORIZATION in request.headers  # the caller chose its own credentials
        ):
            return await handler(request)
        url, bearer = request.url, self._bearer
        if SLOTS:
            scheme, authority = url._scheme, url._netloc
        else:
            scheme, authority = url.scheme, url.raw_authority
        # The verdicts' key: an https origin by its authority alone, any other by both
        # (a str keeps its hash; a tuple is built and hashed per request). Never equal.
        key: object = authority if scheme == "https" else (scheme, authority)
        if not bearer.fixed:  # no origins=: the session's base_url decides too
            key = (key, _session_base_url(request))
        verdict = bearer.verdicts.get(key)  # see Destinations.allows
        if (
            verdict is not True
            and not (  # a path of an origin that also serves a token endpoint, seen before
                type(verdict) is TokenPaths
                and verdict.seen.get(url._path if SLOTS else url.raw_path)
            )
            and not self._allowed(request, verdict, key)
        ):
            return await handler(request)
        hot = bearer.hot  # the manager, if get_token() would hand out its hot token
        if hot is not None and (token := hot._hot) is not None:
            hot._hot_hits += 1  # a hit, as get_token() counts it
        else:
            token = await self.manager.get_token(bearer.scopes, min_ttl=bearer.min_ttl)
        last, header = bearer.last  # a plain Bearer token's header, made once per token
        if token is not last and not (header := bearer.header(token)):
            response, sent = await self._send(request, handler, token)  # DPoP (RFC 9449)
        else:
            request.headers.add(AUTHORIZATION, header)  # absent (checked above): no search
            response, sent = await handler(request), None
        if response.status != 401:
            return response
        return await self._after_401(request, handler, token, response, sent)

    async def _after_401(
        self,
        request: ClientRequest,
        handler: ClientHandlerType,
        token: Token,
        response: ClientResponse,
        sent: str | None,
    ) -> ClientResponse:
        """A 401: one retry with a DPoP nonce, or with a fresh token (see the class)."""
        challenge = response.headers.get(hdrs.WWW_AUTHENTICATE)
        if self._bearer.dpop.nonce_challenge(token, request.url, challenge, sent):
            # RFC 9449 §9: not the token's fault; the caller's own retry carries the nonce
            if not _replayable(request.body):
                return response
            response.release()
            await request.close()
            response, _ = await self._send(request, handler, token)
            if response.status != 401:
                return response
        fresh = await self._replacement(token, request, response)
        if fresh is None:
            return response
        return (await self._send(request, handler, fresh))[0]

    async def _send(
        self, request: ClientRequest, handler: ClientHandlerType, token: Token
    ) -> tuple[ClientResponse, str | None]:
        """Send with ``token`` (and a fresh DPoP proof if it is bound, RFC 9449 §7);
        the response and the DPoP nonce the proof carried."""
        dpop = self._bearer.dpop
        sent = dpop.apply(request.headers, token, request.method, request.url)
        response = await handler(request)
        if token.dpop_key is not None:
            dpop.observe(token, request.url, response.headers.get("DPoP-Nonce"))
        return response, sent

    async def _replacement(
        self, token: Token, request: ClientRequest, response: ClientResponse
    ) -> Token | None:
        """After a 401: drop ``token``; a fresh token to retry with, or None to give up.

        On a retry the 401 is released first, so it holds no connection the retry waits for.
        """
        try:
            if not _replayable(request.body):
                await self.manager.invalidate(token)  # the caller's own retry gets a new one
                return None
            fresh = await self._bearer.replacement(token)
        except BaseException:
            response.release()
            raise
        if fresh is None:
            return None
        response.release()
        # Wait until the first attempt's body writer has stopped (release() cancels it),
        # so that the retry writes the body from the start, as aiohttp does for redirects.
        await request.close()
        return fresh

    def _allowed(self, request: ClientRequest, verdict: Decision | None, key: object) -> bool:
        """Whether ``request`` may get the token, its cached ``verdict`` (under ``key``)
        being other than plain "allowed" (see ``Destinations.allows``)."""
        if verdict is False:
            return False  # refused, and said so when decided
        url = request.url
        if isinstance(verdict, TokenPaths):  # this origin also serves a token endpoint
            return verdict.allows(raw_path(url), url)
        bearer = self._bearer
        if bearer.fixed:  # the session's base_url cannot matter: not looked up (as in the key)
            return bearer.destinations.allows(url, key=key)
        return bearer.destinations.allows(url, _session_base_url(request), key)


# A request's origin as the verdicts' key, and its raw path as TokenPaths' key. yarl's
# accessors (scheme, raw_authority, raw_path) are cached properties, each a dict lookup
# on a URL that aiohttp makes per request; the slots they read are attributes. Read
# directly where they hold the same values (they do in yarl 1.25), checked once here and
# by tests/unit/test_url_parts.py; through the accessors otherwise.
def _slots_agree() -> bool:
    url = URL("https://user@API.example:8443/a%20b/?q=1#f")
    try:
        slots = (url._scheme, url._netloc, url._path)
    except AttributeError:  # pragma: no cover - another yarl
        return False
    return slots == (url.scheme, url.raw_authority, url.raw_path)


SLOTS = _slots_agree()


def raw_path(url: URL) -> str:
    """``url``'s percent-encoded path (``""`` for ``"/"`` with the slots: a key only)."""
    return url._path if SLOTS else url.raw_path


def _session_base_url(request: ClientRequest) -> URL | None:
    """The ``base_url`` of the session that made ``request``, if any.

    aiohttp has no public accessor for either, so both lookups tolerate their absence;
    a missing base_url only ever means "no default origin", never "any origin".
    """
    session = getattr(request, "_session", None)
    base_url = getattr(session, "_base_url", None)
    return base_url if isinstance(base_url, URL) else None


def _replayable(body: payload.Payload | bytes) -> bool:
    """Whether aiohttp can send this request body again, unchanged.

    Only in-memory bodies qualify: ``BytesPayload`` covers bytes, str, ``json=`` and
    urlencoded forms. Async iterables and stream readers are drained by the first send;
    files and multipart bodies depend on seeking back, which a pipe or socket cannot.
    """
    if isinstance(body, bytes):
        return True  # aiohttp's b"" for "no body"
    return isinstance(body, payload.BytesPayload) and not body.consumed
