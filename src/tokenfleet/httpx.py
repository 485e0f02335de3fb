"""httpx authentication: bearer tokens from a :class:`~tokenfleet.TokenManager`.

```python
auth = tokenfleet.httpx.BearerAuth(tokens, origins=["https://api.example.com"])
async with httpx.AsyncClient(base_url="https://api.example.com", auth=auth) as http:
    response = await http.get("/orders")
```

An optional extra: ``pip install tokenfleet[httpx]``. Importing ``tokenfleet`` never
needs httpx; importing this module without it raises an ``ImportError`` that says so.
See ``docs/integrations.md``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import NoReturn

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "tokenfleet.httpx needs httpx, which is not installed: pip install tokenfleet[httpx]",
        name="httpx",
    ) from exc
from yarl import URL

from ._bearer import BearerAuthBase, TokenPaths
from ._exceptions import ConfigurationError

__all__ = ["BearerAuth"]


class BearerAuth(BearerAuthBase, httpx.Auth):  # type: ignore[misc,unused-ignore]  # Any without httpx
    """An ``httpx.Auth`` that authenticates requests with a bearer token. Async only.

    For each request to an allowed origin it sets ``Authorization`` from
    ``manager.get_token(scopes)`` (RFC 6750 §2.1). On a ``401`` (with or without
    ``WWW-Authenticate: Bearer error="invalid_token"``, RFC 6750 §3.1) it invalidates
    *that* token and sends the request once more with a fresh token; httpx reads and
    closes the first response and keeps it in ``response.history``. A second ``401`` is
    returned as it is. Invalidation is compare-and-delete, so a burst of 401s for one
    revoked token costs one token request.

    A DPoP-bound token (``ClientCredentials(dpop=...)``, RFC 9449) goes as
    ``Authorization: DPoP <token>`` with a fresh ``DPoP`` proof per request (``htm``,
    ``htu``, ``ath``), never as ``Bearer``. A ``401`` with ``WWW-Authenticate: DPoP
    error="use_dpop_nonce"`` and a new ``DPoP-Nonce`` is retried once with that nonce
    (remembered per origin, and updated from every ``DPoP-Nonce`` header); other 401s
    follow the rule above.

    Requests it leaves alone (sent unchanged, no token fetched): those to an origin not
    in ``origins``, to the manager's token endpoint, and those that already carry an
    ``Authorization`` header. httpx itself drops the header on a redirect to another
    origin.

    A request whose body cannot be sent twice (an iterator or async iterator, multipart
    with files) is not retried: its ``401`` is returned, after the token has been
    invalidated. Bodies given as ``content=bytes|str``, ``json=`` or ``data=`` (a form)
    are retried. The body is never read into memory to make a retry possible.

    Args:
        manager: where tokens come from.
        scopes: the scopes to ask the manager for (``None``: the source's defaults).
        origins: ``scheme://host[:port]`` values allowed to receive the token. When not
            given: the origins of the source's RFC 8707 ``resource`` indicators; without
            those, the first origin a request goes to, and only that one (logged once as
            a WARNING).
        min_ttl: ask the manager for a token that stays valid this many more seconds
            (see ``TokenManager.get_token``): set it to the longest a request may wait
            for a pooled connection, so the token cannot expire in the queue.
        allow_insecure_http: permit sending the token over plain http to a non-loopback
            host. RFC 6750 §5.3 requires TLS; only for test setups.

    Raises:
        ConfigurationError: an origin that is not ``scheme://host[:port]``,
            or plain http to a non-loopback host without ``allow_insecure_http``.
    """

    integration = "httpx"

    requires_request_body = False  # never buffer a streaming upload just to retry it
    requires_response_body = False  # the 401's body is not needed to decide

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Authenticate ``request`` if it is meant to be, and retry it once after a 401."""
        if not self._should_authenticate(request):
            yield request
            return
        bearer = self._bearer
        hot = bearer.hot  # the manager, if get_token() would hand out its hot token
        if hot is not None and (token := hot._hot) is not None:
            hot._hot_hits += 1  # a hit, as get_token() counts it
        else:
            token = await self.manager.get_token(bearer.scopes, min_ttl=bearer.min_ttl)
        dpop, sent = bearer.dpop, None
        last, header = bearer.last  # a plain Bearer token's header, made once per token
        if token is last or (header := bearer.header(token)):
            _set_authorization(request.headers, header)  # the common case: nothing else
            response = yield request
            if response.status_code != 401:
                return
            url = URL(str(request.url))  # for the 401 only: parsing costs per request
        else:  # DPoP (RFC 9449 §7): a proof per request, nonces remembered per origin
            url = URL(str(request.url))
            sent = dpop.apply(request.headers, token, request.method, url)
            response = yield request
            dpop.observe(token, url, response.headers.get("DPoP-Nonce"))
            if response.status_code != 401:
                return
        replayable = isinstance(request.stream, httpx.ByteStream)
        challenge = response.headers.get("WWW-Authenticate")
        if dpop.nonce_challenge(token, url, challenge, sent):
            # RFC 9449 §9: the resource wants a nonce; one retry with it, same token (or,
            # for a body that cannot be sent twice, the caller's own retry carries it)
            if not replayable:
                return
            dpop.apply(request.headers, token, request.method, url)
            response = yield request
            dpop.observe(token, url, response.headers.get("DPoP-Nonce"))
            if response.status_code != 401:
                return
        if not replayable:
            # an iterator or multipart body: the first send may have drained it
            await self.manager.invalidate(token)  # the caller's own retry gets a new one
            return
        fresh = await self._bearer.replacement(token)
        if fresh is None:
            return
        dpop.apply(request.headers, fresh, request.method, url)
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Not supported: tokenfleet is async. Raises ``ConfigurationError``."""
        _async_only()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Not supported: tokenfleet is async. Raises ``ConfigurationError``."""
        _async_only()

    def _should_authenticate(self, request: httpx.Request) -> bool:
        if _has_authorization(request.headers):
            return False  # the caller chose its own credentials
        url = request.url
        if PARSED:
            parsed = url._uri_reference  # see PARSED
            key: object = (parsed.scheme, parsed.host, parsed.port)
            raw_path: object = parsed.path
        else:  # port None: the scheme's default; the raw path with the query (a key only)
            key, raw_path = (url.scheme, url.raw_host, url.port), url.raw_path
        destinations = self._bearer.destinations
        verdict = destinations.verdicts.get(key)  # see Destinations.allows
        if verdict is True or verdict is False:
            return verdict  # an origin without a token endpoint: nothing to parse
        if type(verdict) is TokenPaths:  # this origin also serves a token endpoint
            return verdict.seen.get(raw_path) or verdict.allows(raw_path, url)
        return destinations.allows(URL(str(url)), key=key)


# A request's origin as the verdicts' key, and its raw path as TokenPaths' key. httpx's
# accessors (raw_host, port, raw_path) encode again on every read, about 0.5 µs a request
# together; the parsed form they read, a named tuple, holds them as they are. Read
# directly where it holds the same values (it does in httpx 0.28), checked once here
# and by tests/unit/test_url_parts.py; through the accessors otherwise.
def _parsed_form_agrees() -> bool:
    url = httpx.URL("https://user@API.example:8443/a%20b/?q=1#f")
    try:
        parsed = url._uri_reference
        found = (parsed.scheme, parsed.host.encode("ascii"), parsed.port, parsed.path)
    except AttributeError:  # pragma: no cover - another httpx
        return False
    return found == (url.scheme, url.raw_host, url.port, url.raw_path.partition(b"?")[0].decode())


PARSED = _parsed_form_agrees()


# httpx's Headers keep (raw name, lower-case name, value) triples in a list, and its public
# accessors work out the headers' encoding on every call: a lookup costs ~0.55 µs, a set
# ~1.2 µs, most of what this layer added to a request. A request without Authorization
# (checked first) gets it by appending the triple that setting it appends. Used where a
# fresh Headers behaves so (httpx 0.28 does), checked once here and by
# tests/unit/test_url_parts.py; through the public accessors otherwise.
def _header_list_agrees() -> bool:
    headers = httpx.Headers({"Host": "api.example", "X-A": "1"})
    try:
        if any(name != raw.lower() for raw, name, _ in headers._list):
            return False  # pragma: no cover - another httpx
        headers._list.append((b"Authorization", b"authorization", b"Bearer t"))
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - another httpx
        return False
    return (
        headers.get("authorization") == "Bearer t"
        and headers.raw[-1] == (b"Authorization", b"Bearer t")
        and "AUTHORIZATION" in headers
        and len(headers) == 3
    )


HEADER_LIST = _header_list_agrees()
_NAME, _LOWER = b"Authorization", b"authorization"


def _has_authorization(headers: httpx.Headers) -> bool:
    if HEADER_LIST:
        for entry in headers._list:  # noqa: SIM110 - any() and a generator cost more per request
            if entry[1] == _LOWER:
                return True
        return False
    return "Authorization" in headers


def _set_authorization(headers: httpx.Headers, value: str) -> None:
    """Set ``Authorization`` on headers that have none (see ``HEADER_LIST``)."""
    if HEADER_LIST and value.isascii():  # a token is ASCII (RFC 6750 §2.1), but check
        headers._list.append((_NAME, _LOWER, value.encode("ascii")))
    else:
        headers["Authorization"] = value


def _async_only() -> NoReturn:
    raise ConfigurationError(
        "tokenfleet.httpx.BearerAuth is async only: use it with httpx.AsyncClient, "
        "not httpx.Client"
    )
