"""``ClientCredentials``: a token source that POSTs to the token endpoint (RFC 6749 §4.4).

The thin I/O shell around the sans-I/O ``request`` and ``response`` modules: it builds
the request with ``request`` and an ``auth`` method, sends it with aiohttp, reads at most
1 MiB of answer, and retries transport errors, 5xx and 429 with full-jitter backoff
inside one total timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Self

import aiohttp

from .._exceptions import (
    ConfigurationError,
    CredentialError,
    FetchTimeout,
    InsufficientScope,
    InvalidClient,
    InvalidTokenResponse,
    RateLimited,
    ServerError,
    TransportError,
    UseDPoPNonce,
)
from .._jwt.dpop_key import DPoPKey
from .._models import Secret, Token
from .._source import SourceDescription
from .._util.closing import AsyncClosing
from . import discovery
from . import env as env_settings
from .auth import AuthMethod, ClientAuth, make_client_auth
from .discovery import ServerMetadata
from .dpop import TokenRequestDPoP, dpop_setting
from .endpoints import note_token_endpoint
from .http import LazySession, send
from .request import (
    build_form,
    cache_key,
    check_endpoint_url,
    check_extra_params,
    encode_form,
    normalize_resources,
    normalize_scopes,
)
from .response import (
    MAX_BODY_BYTES,
    missing_scopes,
    parse_error_response,
    parse_retry_after,
    parse_token_response,
)
from .sources import (
    AssertionCallable,
    AssertionFile,
    KeyFile,
    SecretCallable,
    SecretFile,
    SourceInfo,
)
from .tls import TlsClientCert
from .values import (
    assertion_source,
    certificate_thumbprint,
    checked_key,
    checked_secret,
    default_method,
)

__all__ = ["ClientCredentials", "Retry"]

logger = logging.getLogger("tokenfleet")


@dataclass(frozen=True, slots=True)
class Retry:
    """How a single ``fetch_token`` retries transport errors, HTTP 5xx and 429.

    OAuth errors (4xx) are never retried: asking again with the same credentials gets the
    same answer. Delays use exponential backoff with full jitter; a ``Retry-After`` header
    is honoured when it is no longer than ``max_retry_after``.

    Attributes:
        attempts: total tries, the first included (1 disables retrying).
        backoff: base delay in seconds; try *n* waits up to ``backoff * 2**(n-1)``.
        max_backoff: cap on one backoff delay.
        max_retry_after: the longest ``Retry-After`` we wait for; longer gives up at once.
    """

    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigurationError("Retry.attempts must be an int >= 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ConfigurationError("Retry delays must be >= 0 seconds")

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or ``None`` to give up now."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography


class ClientCredentials(AsyncClosing):
    """A token source for the OAuth 2.0 client-credentials grant (RFC 6749 §4.4).

    ``fetch_token()`` makes one request (plus retries) and caches nothing; wrap the client
    in a :class:`~tokenfleet.TokenManager` for caching, single flight and refresh-ahead.

    Give the token endpoint as ``token_url``, or the authorization server's ``issuer``
    and let discovery find it (RFC 8414, then OpenID Connect Discovery), or both: an
    explicit ``token_url`` is used as given, with no discovery request on the fetch path,
    and ``issuer`` then only serves :meth:`metadata` (e.g. for a ``JWTVerifier``).

    Args:
        token_url: the token endpoint. Must be https unless the host is loopback or
            ``allow_insecure_http=True``.
        issuer: the issuer identifier, exactly as the server spells it (the metadata's
            ``issuer`` must equal it: mix-up protection, RFC 8414 §3.3). With no
            ``token_url``, the metadata is fetched on the first ``fetch_token`` and
            cached; its ``token_endpoint`` passes the same https check, and
            ``auth_method`` must be one the metadata lists.
        client_id: the client identifier.
        client_secret: for the ``client_secret_*`` methods: ``str``, ``bytes``, ``Secret``,
            a ``SecretFile`` (re-read when it changes) or an async callable (asked before
            every token request: a vault, a secret manager).
        auth_method: how the client authenticates (see ``tokenfleet._client.auth``);
            default: ``private_key_jwt`` with ``private_key`` or ``client_assertion``,
            ``tls_client_auth`` with ``tls_client_cert``, else ``client_secret_basic``.
        scopes: default scopes, a list or a space-delimited string.
        audience: the widespread non-standard ``audience`` parameter.
        resource: RFC 8707 resource indicator(s).
        extra_params: more form parameters (may not shadow the ones above).
        private_key: PEM private key for ``private_key_jwt`` (``str``, ``bytes``,
            ``Secret``) or a ``KeyFile`` (re-read when it changes).
        client_assertion: a ready-made client assertion (RFC 7521 §4.2) instead of a
            secret: an ``AssertionFile`` (a Kubernetes projected service-account token,
            ``AZURE_FEDERATED_TOKEN_FILE``, a SPIFFE JWT-SVID) or an async callable that
            returns one. Never sent past its own ``exp``.
        signing_alg: the assertion's JWS algorithm (default from the key: RS256, ES256…).
        key_id: ``kid`` header of the assertion.
        certificate: the PEM certificate of ``private_key``: its SHA-256 thumbprint goes
            in the assertion's ``x5t#S256`` header (RFC 7515 §4.1.8), which Microsoft
            Entra ID needs for certificate credentials.
        assertion_audience: ``aud`` of the assertions we sign: a URL, ``"issuer"`` or
            ``"token_endpoint"``. Default: the issuer when it is known (``issuer=``), as
            RFC 7523bis requires against audience injection (CVE-2025-27370/27371), else
            the token URL (RFC 7523 §3).
        ssl_context: TLS settings, e.g. the client certificate for ``tls_client_auth``;
            with ``tls_client_cert`` only its CA certificates and verification settings
            are used.
        tls_client_cert: PEM client certificate file for ``tls_client_auth`` (RFC 8705),
            re-read when it changes; the cache key follows its fingerprint.
        tls_client_key: the certificate's PEM private key file.
        session: an aiohttp session to use; it is not closed by this client.
        retry: retry policy for transport errors, 5xx and 429.
        timeout: total seconds for one ``fetch_token``, retries included.
        default_lifetime: lifetime assumed when the response has no ``expires_in`` and
            the token is not a JWT with an ``exp``.
        require_scopes: raise ``InsufficientScope`` when the server grants fewer scopes
            than requested (default: log one warning per scope set and go on).
        allow_insecure_http: permit a plain-http token URL on a non-loopback host.
        dpop: ``True`` binds tokens to a proof key made for this client (ES256), or pass
            a :class:`~tokenfleet.DPoPKey`; every token request then carries a DPoP
            proof and the tokens come back ``token_type == "DPoP"`` (RFC 9449). See
            ``docs/dpop.md``.
        allow_dpop_downgrade: accept a ``Bearer`` token in answer to a DPoP request
            (default: raise ``DPoPDowngrade``).
        clock: Unix-time clock, injectable for tests.
    """

    def __init__(
        self,
        token_url: str | None = None,
        *,
        issuer: str | None = None,
        client_id: str,
        client_secret: str | bytes | Secret | SecretFile | SecretCallable | None = None,
        auth_method: AuthMethod | None = None,
        scopes: str | Iterable[str] | None = None,
        audience: str | None = None,
        resource: str | Sequence[str] | None = None,
        extra_params: Mapping[str, str] | None = None,
        private_key: str | bytes | Secret | KeyFile | None = None,
        client_assertion: AssertionFile | AssertionCallable | None = None,
        signing_alg: str | None = None,
        key_id: str | None = None,
        certificate: str | bytes | None = None,
        assertion_audience: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        tls_client_cert: str | os.PathLike[str] | None = None,
        tls_client_key: str | os.PathLike[str] | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: Retry | None = None,
        timeout: float = 10.0,
        default_lifetime: float = 3600.0,
        require_scopes: bool = False,
        allow_insecure_http: bool = False,
        dpop: bool | DPoPKey = False,
        allow_dpop_downgrade: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ConfigurationError("client_id must be a non-empty string")
        if not timeout > 0 or not default_lifetime > 0:
            raise ConfigurationError("timeout and default_lifetime must be positive seconds")
        if (tls_client_cert is None) != (tls_client_key is None):
            raise ConfigurationError("pass tls_client_cert= and tls_client_key= together")
        method: str = auth_method or default_method(private_key, client_assertion, tls_client_cert)
        if (
            method == "tls_client_auth"
            and ssl_context is None
            and session is None
            and tls_client_cert is None
        ):
            raise ConfigurationError(
                "auth_method 'tls_client_auth' needs ssl_context= with the client certificate "
                "loaded, or tls_client_cert= and tls_client_key= (PEM files, re-read when "
                "they change)"
            )
        if token_url is None and issuer is None:
            raise ConfigurationError(
                "pass token_url= (the token endpoint) or issuer= (to discover it)"
            )
        self.issuer: str | None = None
        if issuer is not None:
            self.issuer = discovery.check_issuer(issuer, allow_insecure_http=allow_insecure_http)
        self.token_url: str | None = None
        if token_url is not None:
            self.token_url = check_endpoint_url(token_url, allow_insecure_http=allow_insecure_http)
            note_token_endpoint(self.token_url)  # never a bearer token's destination
        # Identifies the endpoint in the cache key, stable across processes: the token URL
        # when given, else the issuer (whose metadata names the one token endpoint).
        self._endpoint_id = self.token_url or f"issuer:{issuer}"
        self.client_id = client_id
        self.auth_method: str = method
        self.scopes = normalize_scopes(scopes)
        self.audience = audience
        self.resources = normalize_resources(resource)
        self.extra_params = check_extra_params(extra_params)
        self.retry = retry or Retry()
        self.timeout = float(timeout)
        self.default_lifetime = float(default_lifetime)
        self.require_scopes = require_scopes
        self._insecure = allow_insecure_http
        self._metadata: ServerMetadata | None = None
        self._metadata_lock = asyncio.Lock()
        self._scope_warned: set[frozenset[str]] = set()
        self._audience = self._check_audience(assertion_audience)
        self._tls = (
            TlsClientCert(tls_client_cert, tls_client_key, ssl_context)
            if tls_client_cert is not None and tls_client_key is not None
            else None
        )
        self._auth: ClientAuth = make_client_auth(
            method,
            client_id=client_id,
            client_secret=checked_secret(client_secret, method),
            private_key=checked_key(private_key, method, signing_alg),
            client_assertion=assertion_source(client_assertion, clock),
            tls=self._tls,
            signing_alg=signing_alg,
            key_id=key_id,
            clock=clock,
            x5t_s256=certificate_thumbprint(certificate, method),
        )
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._http = LazySession("ClientCredentials", session)
        self._clock = clock
        key = dpop_setting(dpop)
        self._dpop = (
            None if key is None else TokenRequestDPoP(key, allow_downgrade=allow_dpop_downgrade)
        )

    @property
    def dpop(self) -> DPoPKey | None:
        """The DPoP proof key of this client's token requests, if it uses DPoP."""
        return None if self._dpop is None else self._dpop.key

    @classmethod
    def from_env(
        cls, prefix: str = "TOKENFLEET_", *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Self:
        """A client configured by the same variables as the ``tokenfleet`` CLI.

        Reads ``{prefix}TOKEN_URL`` or ``{prefix}ISSUER``, ``CLIENT_ID``,
        ``CLIENT_SECRET`` or ``CLIENT_SECRET_FILE``, ``AUTH_METHOD``, ``SCOPES``,
        ``AUDIENCE``, ``RESOURCE``, ``PRIVATE_KEY_FILE``, ``CA_FILE``, ``CERT_FILE`` and
        ``KEY_FILE`` (see docs/cli.md). ``kwargs`` are further constructor arguments
        (``retry=``, ``timeout=``, ...) and win over the environment.

        Args:
            prefix: the variables' common prefix.
            env: the variables (default ``os.environ``).

        Raises:
            ConfigurationError: a setting is missing (the message lists every missing
                one) or a named file cannot be read.
        """
        settings = env_settings.read_settings(env, prefix=prefix)
        return cls(**{**env_settings.client_kwargs(settings), **kwargs})

    # ------------------------------------------------------------------ TokenSource

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        """The ``TokenSource`` method: same as :meth:`fetch_token`."""
        return await self.fetch_token(scopes)

    def cache_key(self, scopes: str | Iterable[str] | None = None) -> str:
        """The identity of the token this client gets for ``scopes`` (see ``cache_key``)."""
        return cache_key(
            token_url=self._endpoint_id,
            client_id=self.client_id,
            auth_method=self.auth_method,
            credential=self._auth.credential_id,
            scopes=self.scopes if scopes is None else normalize_scopes(scopes),
            audience=self.audience,
            resources=self.resources,
            extra_params=self.extra_params,
            dpop=self._dpop is not None,
        )

    def key_generation(self) -> int:
        """Moves when :meth:`cache_key` may have changed (``tokenfleet.RotatingSource``).

        Only a rotated ``tls_client_cert`` changes the key (its fingerprint is in it,
        RFC 8705 §3); this checks its files with one ``stat`` each. Secrets, keys and
        assertions are deliberately not in the key, so they never move it.
        """
        return self._tls.generation() if self._tls is not None else 0

    async def fetch_token(self, scopes: str | Iterable[str] | None = None) -> Token:
        """POST one client-credentials request (with retries) and return the token.

        Args:
            scopes: scopes for this request; ``None`` uses the client's default scopes.

        Raises:
            OAuthError: the server refused (a subclass per RFC 6749 §5.2 code).
            ServerError, RateLimited: the server kept failing or throttling.
            InvalidTokenResponse: the answer was not a usable token response.
            TransportError: the server could not be reached (``FetchTimeout`` for time).
        """
        wanted = self.scopes if scopes is None else normalize_scopes(scopes)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch_with_retry(wanted)
        except TimeoutError:
            raise FetchTimeout(
                f"no token from {self._endpoint_id} within {self.timeout:g} s (retries included)"
            ) from None

    async def _fetch_with_retry(self, scopes: tuple[str, ...]) -> Token:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._fetch_once(scopes)
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
                    self._endpoint_id,
                    type(exc).__name__,
                    attempt,
                    self.retry.attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _fetch_once(self, scopes: tuple[str, ...]) -> Token:
        token_url = await self._token_endpoint()
        if self.token_url is None:
            note_token_endpoint(token_url)  # discovered: never a bearer token's destination
        try:
            return await self._fetch_bound(token_url, scopes)
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
        return await self._fetch_bound(token_url, scopes)

    async def _refreshed(self) -> bool:
        try:
            return await self._auth.refresh()
        except CredentialError:
            return False  # the refusal says more than a source that broke meanwhile

    async def _fetch_bound(self, token_url: str, scopes: tuple[str, ...]) -> Token:
        """One request, plus the DPoP nonce retry when the server asks for one."""
        if self._dpop is None:
            return await self._post(token_url, scopes, {})
        proof, sent = self._dpop.proof(token_url)
        try:
            token = await self._post(token_url, scopes, {"DPoP": proof})
        except UseDPoPNonce as exc:  # RFC 9449 §8: one retry with the nonce, never a loop
            if not self._dpop.may_retry(exc, token_url, sent):
                raise
            token = await self._post(token_url, scopes, {"DPoP": self._dpop.proof(token_url)[0]})
        return self._dpop.bind(token, token_url)

    async def _post(
        self, token_url: str, scopes: tuple[str, ...], extra_headers: dict[str, str]
    ) -> Token:
        form = build_form(scopes, self.audience, self.resources, self.extra_params)
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            **extra_headers,
        }
        sensitive = await self._auth.apply(form, headers, self._assertion_audience(token_url))
        ssl_context = self._tls.context() if self._tls is not None else self._ssl
        issued_at = self._clock()  # before sending: expiry errs on the early side
        reply = await send(
            self._http.get(),
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
        if self._dpop is not None:
            self._dpop.observe(token_url, reply.headers.get("DPoP-Nonce"))
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
            retry_after=parse_retry_after(reply.headers.get("Retry-After"), now=self._clock()),
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
        if wanted in self._scope_warned or len(self._scope_warned) >= 1024:
            return
        self._scope_warned.add(wanted)
        logger.warning(
            "tokenfleet: %s; token.scopes has the granted ones (require_scopes=True makes "
            "this an error)",
            message,
        )

    def _check_audience(self, audience: str | None) -> str | None:
        if audience == "issuer" and self.issuer is None:
            raise ConfigurationError("assertion_audience='issuer' needs issuer=")
        if audience is not None and (not isinstance(audience, str) or not audience):
            raise ConfigurationError("assertion_audience must be a non-empty string")
        return audience

    def _assertion_audience(self, token_url: str) -> str:
        """``aud`` of the assertions we sign (RFC 7523 §3, RFC 7523bis §4).

        The issuer when we know it: an assertion whose audience is the issuer identifier
        is useless at any other server, which closes the audience-injection attack of
        CVE-2025-27370/27371. Without an issuer, the token endpoint (RFC 7523 §3).
        """
        chosen = self._audience
        if chosen == "token_endpoint" or (chosen is None and self.issuer is None):
            return token_url
        if chosen == "issuer" or chosen is None:
            assert self.issuer is not None
            return self.issuer
        return chosen

    def describe(self) -> SourceDescription:
        """What this client says about itself (``tokenfleet.SourceDescription``)."""
        return SourceDescription(
            client_id=self.client_id,
            token_url=self.token_url,
            issuer=self.issuer,
            resources=self.resources,
            timeout=self.timeout,
        )

    def credential_sources(self) -> tuple[SourceInfo, ...]:
        """Where each credential comes from (value, file, callable) and its state.

        What ``tokenfleet check`` reports: never the credential itself.
        """
        return self._auth.sources()

    # ------------------------------------------------------------------ discovery

    async def metadata(self) -> ServerMetadata:
        """The issuer's metadata (RFC 8414 / OpenID Connect Discovery), fetched once.

        Raises:
            ConfigurationError: the client has no ``issuer``.
            IssuerMismatch: the document is for another issuer (mix-up protection).
            DiscoveryError: no usable document at either well-known URL.
            TransportError: the server could not be reached.
        """
        if self._metadata is not None:
            return self._metadata
        if self.issuer is None:
            raise ConfigurationError("this client has no issuer=; metadata needs one")
        async with self._metadata_lock:  # single flight: concurrent first fetches wait
            if self._metadata is None:
                self._metadata = await discovery.fetch_metadata(
                    self._http.get(),
                    self.issuer,
                    allow_insecure_http=self._insecure,
                    ssl=self._ssl,
                )
            return self._metadata

    async def _token_endpoint(self) -> str:
        if self.token_url is not None:
            return self.token_url
        metadata = await self.metadata()
        discovery.check_auth_method(metadata, self.auth_method)
        if self.auth_method == "tls_client_auth":
            # RFC 8705 §5: mutual-TLS clients use the alias when the server names one.
            alias = metadata.mtls_endpoint_aliases.get("token_endpoint")
            if alias:
                return discovery.check_endpoint(
                    alias, "mtls token_endpoint", metadata.url, self._insecure
                )
        return metadata.token_endpoint

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the HTTP session this client opened (a session passed in stays open)."""
        await self._http.aclose()

    def __reduce__(self) -> NoReturn:
        raise ConfigurationError(
            "a tokenfleet ClientCredentials cannot be pickled (it holds credentials): build "
            "the client in each process from its environment or files"
        )

    def __repr__(self) -> str:
        where = f"token_url={self.token_url!r}" if self.token_url else f"issuer={self.issuer!r}"
        dpop = "" if self._dpop is None else f", dpop={self._dpop.key!r}"
        return (
            f"ClientCredentials({where}, client_id={self.client_id!r}, "
            f"auth_method={self.auth_method!r}, scopes={self.scopes!r}{dpop})"
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
