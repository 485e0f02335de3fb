"""One token request with its retries: the I/O path of ``ClientCredentials.fetch_token``.

``TokenExchange`` builds the client-credentials request (RFC 6749 §4.4) with the
sans-I/O ``request`` module and a ``ClientAuth``, binds it to a DPoP key when the client
has one (RFC 9449), sends it with aiohttp, reads at most 1 MiB of answer and parses it
with ``response``. It retries transport errors, 5xx and 429 per ``Retry``, and a refused
credential once after re-reading its source. The total timeout is the caller's.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .._exceptions import (
    CredentialError,
    InsufficientScope,
    InvalidClient,
    InvalidTokenResponse,
    RateLimited,
    ServerError,
    TransportError,
    UseDPoPNonce,
)
from .._models import Token
from .auth import ClientAuth
from .dpop import TokenRequestDPoP
from .endpoints import note_token_endpoint
from .http import LazySession, send
from .request import build_form, encode_form
from .response import (
    MAX_BODY_BYTES,
    missing_scopes,
    parse_error_response,
    parse_retry_after,
    parse_token_response,
)
from .retry import Retry
from .tls import TlsClientCert

__all__ = ["TokenExchange"]

logger = logging.getLogger("tokenfleet")


@dataclass(slots=True, kw_only=True)
class TokenExchange:
    """What one token request needs, and the request itself (``with_retry``, ``once``).

    ``endpoint`` resolves the token endpoint (the configured URL, or discovery's);
    ``discovered`` says it was not configured, so each answer is noted as a token
    endpoint. ``assertion_audience`` maps the endpoint to the ``aud`` of signed
    assertions.
    """

    client_id: str
    endpoint_id: str  # names the endpoint in log lines
    endpoint: Callable[[], Awaitable[str]]
    discovered: bool
    assertion_audience: Callable[[str], str]
    auth: ClientAuth
    dpop: TokenRequestDPoP | None
    tls: TlsClientCert | None
    ssl: ssl.SSLContext | bool
    http: LazySession
    clock: Callable[[], float]
    retry: Retry
    audience: str | None
    resources: Sequence[str]
    extra_params: Mapping[str, str]
    default_lifetime: float
    require_scopes: bool
    scope_warned: set[frozenset[str]] = field(default_factory=set)

    async def with_retry(self, scopes: tuple[str, ...], timeout: float) -> Token:
        """``once``, retried per ``retry`` while ``timeout`` seconds allow."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.once(scopes)
            except (TransportError, ServerError, RateLimited) as exc:
                # RFC 9110 §10.2.3: Retry-After on a 503 (or any 5xx) as on a 429.
                retry_after = getattr(exc, "retry_after", None)
                delay = self.retry.delay(attempt, retry_after)
                # A wait that would outlast the total timeout only hides the real error.
                if delay is None or (retry_after is not None and delay >= deadline - loop.time()):
                    _say_given_up(exc, attempt)
                    raise
                logger.debug(
                    "token request to %s failed (%s); retry %d/%d in %.2f s",
                    self.endpoint_id,
                    type(exc).__name__,
                    attempt,
                    self.retry.attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)

    async def once(self, scopes: tuple[str, ...]) -> Token:
        """One try: a request, plus one more if the credential was rotated meanwhile."""
        token_url = await self.endpoint()
        if self.discovered:
            note_token_endpoint(token_url)  # discovered: never a bearer token's destination
        try:
            return await self._bound(token_url, scopes)
        except InvalidClient:
            # A rotated credential: the source may hold a newer value than the one just
            # refused. Read it once more and retry once, before the error can reach the
            # manager (whose fleet cooldown would otherwise start on a rotation).
            if not await self._refreshed():
                raise
        logger.info(
            "tokenfleet: %s: the token endpoint refused the credential; a new one was read "
            "from its source, retrying once",
            self.client_id,
        )
        return await self._bound(token_url, scopes)

    async def _refreshed(self) -> bool:
        try:
            return await self.auth.refresh()
        except CredentialError:
            return False  # the refusal says more than a source that broke meanwhile

    async def _bound(self, token_url: str, scopes: tuple[str, ...]) -> Token:
        """One request, plus the DPoP nonce retry when the server asks for one."""
        if self.dpop is None:
            return await self._post(token_url, scopes, {})
        proof, sent = self.dpop.proof(token_url)
        try:
            token = await self._post(token_url, scopes, {"DPoP": proof})
        except UseDPoPNonce as exc:  # RFC 9449 §8: one retry with the nonce, never a loop
            if not self.dpop.may_retry(exc, token_url, sent):
                raise
            token = await self._post(token_url, scopes, {"DPoP": self.dpop.proof(token_url)[0]})
        return self.dpop.bind(token, token_url)

    async def _post(
        self, token_url: str, scopes: tuple[str, ...], extra_headers: dict[str, str]
    ) -> Token:
        form = build_form(scopes, self.audience, self.resources, self.extra_params)
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            **extra_headers,
        }
        sensitive = await self.auth.apply(form, headers, self.assertion_audience(token_url))
        ssl_context = self.tls.context() if self.tls is not None else self.ssl
        issued_at = self.clock()  # before sending: expiry errs on the early side
        reply = await send(
            self.http.get(),
            "POST",
            token_url,
            what="the token endpoint",
            limit=MAX_BODY_BYTES,
            too_large=_too_large,
            scrub=sensitive,
            data=encode_form(form),
            headers=headers,
            ssl=ssl_context,
        )
        status, body = reply.status, reply.body
        content_type = reply.headers.get("Content-Type", "")
        if self.dpop is not None:
            self.dpop.observe(token_url, reply.headers.get("DPoP-Nonce"))
        if 200 <= status < 300:
            token = parse_token_response(
                body,
                status=status,
                content_type=content_type,
                requested_scopes=scopes,
                issued_at=issued_at,
                default_lifetime=self.default_lifetime,
            )
            self._check_granted(scopes, token.scopes)
            return token
        raise parse_error_response(
            body,
            status=status,
            content_type=content_type,
            retry_after=parse_retry_after(reply.headers.get("Retry-After"), now=self.clock()),
            scrub=sensitive,
        )

    def _check_granted(self, requested: tuple[str, ...], granted: tuple[str, ...]) -> None:
        """Fewer scopes than asked for: an error with ``require_scopes``, else one warning
        per requested scope set (RFC 6749 §3.3 lets the server grant less)."""
        missing = missing_scopes(requested, granted)
        if not missing:
            return
        message = (
            f"{self.client_id} asked for scopes {' '.join(requested)!r} but was granted "
            f"{' '.join(granted)!r} (missing {' '.join(missing)!r})"
        )
        if self.require_scopes:
            raise InsufficientScope(message, requested=requested, granted=granted)
        wanted = frozenset(requested)
        if wanted in self.scope_warned or len(self.scope_warned) >= 1024:
            return
        self.scope_warned.add(wanted)
        logger.warning(
            "tokenfleet: %s; token.scopes has the granted ones (require_scopes=True makes "
            "this an error)",
            message,
        )


def _say_given_up(error: Exception, attempts: int) -> None:
    """Add to the message what happened: the retries are over (or were not worth it)."""
    what = f"after {attempts} attempts" if attempts > 1 else "not retried"
    error.args = (f"{error.args[0] if error.args else error}; {what}", *error.args[1:])


def _too_large(status: int, message: str) -> InvalidTokenResponse:
    return InvalidTokenResponse(
        f"the token endpoint's answer is too large to be a token response: {message}; "
        "stopped reading",
        status=status,
    )
