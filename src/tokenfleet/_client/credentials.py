"""``ClientCredentials``: a token source that POSTs to the token endpoint (RFC 6749 §4.4).

Configuration and composition: the constructor checks the settings and builds the
``auth`` method, the optional DPoP binding and TLS client certificate; ``exchange``
sends the request and retries it (per ``retry.Retry``) inside this client's one total
timeout; ``discovery`` finds the token endpoint from the issuer when it is not given.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn, Self

import aiohttp

from .._exceptions import (
    ConfigurationError,
    FetchTimeout,
)
from .._jwt.dpop_key import DPoPKey
from .._models import Secret, Token
from .._source import SourceDescription
from .._util.closing import AsyncClosing
from .._util.numbers import finite_number
from . import discovery
from . import env as env_settings
from .auth import AuthMethod, ClientAuth, make_client_auth
from .discovery import ServerMetadata
from .dpop import TokenRequestDPoP, dpop_setting
from .endpoints import note_token_endpoint
from .exchange import TokenExchange
from .http import LazySession
from .request import (
    cache_key,
    check_endpoint_url,
    check_extra_params,
    normalize_resources,
    normalize_scopes,
)
from .retry import Retry
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
    assertion_audience,
    assertion_source,
    certificate_thumbprint,
    checked_audience,
    checked_key,
    checked_secret,
    default_method,
)

__all__ = ["ClientCredentials"]


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
        for name, seconds in (("timeout", timeout), ("default_lifetime", default_lifetime)):
            if not finite_number(seconds) or not seconds > 0:
                raise ConfigurationError(f"{name} must be a positive, finite number of seconds")
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
        self._audience = checked_audience(assertion_audience, self.issuer)
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
        self._issuer_metadata = (
            None
            if self.issuer is None
            else discovery.IssuerMetadata(
                self._http, self.issuer, allow_insecure_http=allow_insecure_http, ssl=self._ssl
            )
        )
        self._clock = clock
        key = dpop_setting(dpop)
        self._dpop = (
            None if key is None else TokenRequestDPoP(key, allow_downgrade=allow_dpop_downgrade)
        )
        self._exchange = TokenExchange(
            client_id=client_id,
            endpoint_id=self._endpoint_id,
            endpoint=self._token_endpoint,
            discovered=self.token_url is None,
            assertion_audience=self._assertion_audience,
            auth=self._auth,
            dpop=self._dpop,
            tls=self._tls,
            ssl=self._ssl,
            http=self._http,
            clock=clock,
            retry=self.retry,
            audience=audience,
            resources=self.resources,
            extra_params=self.extra_params,
            default_lifetime=self.default_lifetime,
            require_scopes=require_scopes,
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
                return await self._exchange.with_retry(wanted, self.timeout)
        except TimeoutError:
            raise FetchTimeout(
                f"no token from {self._endpoint_id} within {self.timeout:g} s (retries included)"
            ) from None

    def _assertion_audience(self, token_url: str) -> str:
        """``aud`` of the assertions we sign (see ``values.assertion_audience``)."""
        return assertion_audience(self._audience, self.issuer, token_url)

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
        if self._issuer_metadata is None:
            raise ConfigurationError("this client has no issuer=; metadata needs one")
        return await self._issuer_metadata.get()

    async def _token_endpoint(self) -> str:
        if self.token_url is not None:
            return self.token_url
        assert self._issuer_metadata is not None  # __init__ wants token_url= or issuer=
        return await self._issuer_metadata.token_endpoint(self.auth_method)

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
