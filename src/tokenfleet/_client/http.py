"""HTTP for the requests tokenfleet makes for itself: token, metadata and JWK Set.

Three rules hold for every one of them, so they live here once:

* the body is read whole, up to a size limit (``StreamReader.read(n)`` returns what has
  arrived so far, so a single read cuts a document split across TCP segments);
* our own ``BearerAuth`` middleware leaves them alone, however the session is shared:
  a discovery request that waited for a token that needs discovery would never end;
* a transport failure becomes a ``TransportError`` with no exception chain: aiohttp's
  ``ClientResponseError`` keeps the request headers, ``Authorization: Basic`` included.

The sessions tokenfleet opens log each request at DEBUG on the ``tokenfleet.http`` logger
(``tokenfleet --log-http``): method, URL without query, status, latency. Never a body or
a header, so never a secret, an assertion or a token.
"""

from __future__ import annotations

import contextvars
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
from yarl import URL

from .._exceptions import ConfigurationError, TokenFleetError, TransportError
from .._util.redact import printable, redact
from .._util.words import latency

__all__ = ["HTTP_LOGGER", "LazySession", "Reply", "is_own_request", "send"]

HTTP_LOGGER = "tokenfleet.http"
_log = logging.getLogger(HTTP_LOGGER)

_CHUNK = 64 * 1024
_own_request = contextvars.ContextVar("tokenfleet_own_request", default=False)


# Whether the running code is sending one of tokenfleet's own requests. Middlewares run
# in the task that sends the request, so a context variable set around
# ``session.request`` reaches them; it is reset as soon as the request is done. The bound
# method itself, not a function around it: the aiohttp middleware asks on every request.
is_own_request: Callable[[], bool] = _own_request.get


@dataclass(frozen=True, slots=True)
class Reply:
    """A response, read whole: status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    limit: int,
    too_large: Callable[[int, str], TokenFleetError],
    scrub: Sequence[str] = (),
    **kwargs: Any,
) -> Reply:
    """Send one of our own requests and read the whole answer, at most ``limit`` bytes.

    ``what`` names the endpoint in messages; ``too_large(status, message)`` builds the
    error for an oversized body; ``scrub`` lists values no message may show. Redirects
    are not followed, and a session made with ``raise_for_status=True`` does not turn
    the token endpoint's RFC 6749 §5.2 error answer into an aiohttp exception.

    Raises:
        TransportError: the request failed (no ``__cause__`` or ``__context__``).
        TokenFleetError: from ``too_large``.
    """
    reset = _own_request.set(True)
    try:
        async with session.request(
            method, url, allow_redirects=False, raise_for_status=False, **kwargs
        ) as response:
            body = await read_limited(response, limit, too_large)
            return Reply(response.status, response.headers, body)
    except (aiohttp.ClientError, OSError) as exc:
        message = (
            f"could not reach {what} {url}: {type(exc).__name__}{_error_detail(exc, scrub)}"
            f"{_plain_http_hint(exc, url)}"
        )
    finally:
        _own_request.reset(reset)
    # Raised outside the except block, so that the aiohttp exception (which holds the
    # request headers) is neither the cause nor the context of ours.
    raise TransportError(message)


async def read_limited(
    response: aiohttp.ClientResponse,
    limit: int,
    too_large: Callable[[int, str], TokenFleetError],
) -> bytes:
    """The whole body, refusing more than ``limit`` bytes without reading further."""
    if (response.content_length or 0) > limit:
        message = f"the answer announces {response.content_length} bytes, more than {limit}"
        raise too_large(response.status, message)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large(response.status, f"the answer exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _plain_http_hint(exc: BaseException, url: str) -> str:
    """An https request answered in plain HTTP fails the TLS handshake with OpenSSL's
    WRONG_VERSION_NUMBER (the reply's first bytes, "HTTP/", are no TLS record)."""
    cause = getattr(exc, "os_error", exc)
    if isinstance(cause, ssl.SSLError) and cause.reason in (
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
    ):
        plain = "http://" + url.removeprefix("https://")
        return f"; the server speaks plain HTTP on this port: use {plain}, or its https port"
    return ""


def _shown(url: URL) -> str:
    # No query, fragment or userinfo: the only parts of a URL that could carry a credential.
    return str(url.with_query(None).with_fragment(None).with_user(None))


async def _on_start(
    _: aiohttp.ClientSession, context: SimpleNamespace, __: aiohttp.TraceRequestStartParams
) -> None:
    context.started = time.perf_counter()


async def _on_end(
    _: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
) -> None:
    if _log.isEnabledFor(logging.DEBUG):
        took = latency(time.perf_counter() - context.started)
        _log.debug("%s %s %d %s", params.method, _shown(params.url), params.response.status, took)


async def _on_error(
    _: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestExceptionParams,
) -> None:
    if _log.isEnabledFor(logging.DEBUG):
        took = latency(time.perf_counter() - context.started)
        failure = type(params.exception).__name__
        _log.debug("%s %s failed (%s) %s", params.method, _shown(params.url), failure, took)


def _trace() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_on_start)
    trace.on_request_end.append(_on_end)
    trace.on_request_exception.append(_on_error)
    return trace


def _error_detail(exc: BaseException, scrub: Sequence[str]) -> str:
    """`` (message)`` of a transport error, secrets redacted; empty when it has none."""
    text = printable(redact(str(exc), scrub), 200)
    return f" ({text})" if text else ""


class LazySession:
    """An ``aiohttp.ClientSession`` made on first use (inside the event loop).

    A session given by the user is used as is and never closed here.
    """

    def __init__(self, owner: str, session: aiohttp.ClientSession | None = None) -> None:
        self._owner = owner
        self._session = session
        self._owned = session is None
        self._closed = False

    def get(self) -> aiohttp.ClientSession:
        """The session; raises ``ConfigurationError`` once closed."""
        if self._closed:
            raise ConfigurationError(f"this {self._owner} is closed; create a new one")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None),  # callers bound their own time
                headers={"User-Agent": "tokenfleet"},
                trace_configs=[_trace()],
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if we opened it; later ``get()`` calls raise."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owned:
            await session.close()
