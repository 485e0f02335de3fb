"""`DevAuthServer`: a small, real OAuth 2.0 authorization server on loopback.

It serves the client credentials grant (RFC 6749 §4.4) with every client authentication
method, RS256 JWT access tokens (RFC 9068), a JWKS, discovery metadata (RFC 8414) and a
protected resource, and lets a test change its behaviour while it runs: token lifetime,
latency, response shape, injected faults, key rotation and revocation.

It deliberately imports nothing from tokenfleet outside ``tokenfleet.testing``, so it
tests the client honestly.
"""

from __future__ import annotations

import secrets
import socket
import ssl
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .._util.closing import AsyncClosing
from ._admin import ClientAdmin
from ._clients import (
    ClientAuthenticator,
    RegisteredClient,
    new_client,
)
from ._counters import Counters, RequestRecord
from ._documents import ServedDocuments
from ._dpop import DevDPoP
from ._errors import NO_STORE, json_response
from ._faults import Fault, FaultPlan
from ._keys import KeyRing
from ._thread import ServerThread
from ._token_endpoint import TokenEndpoint
from ._tokens import TokenMinter

_DEFAULT_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


class DevAuthServer(ClientAdmin, TokenEndpoint, ServedDocuments, AsyncClosing):
    """A real OAuth 2.0 authorization server for tests, on ``127.0.0.1`` and a free port.

    Use ``async with DevAuthServer() as idp:`` to run it on the current event loop, or
    ``with DevAuthServer().run_in_thread() as idp:`` to run it in a thread of its own.
    A default client ``idp.client_id`` / ``idp.client_secret`` may use
    ``client_secret_basic``, ``client_secret_post`` and ``client_secret_jwt`` with any
    scope. The attributes below may be changed at any time, from any thread; clients
    can be rotated (`rotate_client_secret`, `rotate_client_key`) and federated
    (`register_federated_client`) while it runs.

    Attributes:
        token_lifetime: lifetime of new access tokens in seconds.
        latency: seconds to wait before answering a token request.
        include_expires_in: False leaves ``expires_in`` out of token responses.
        include_scope: False leaves ``scope`` out of token responses.
        opaque_tokens: True issues random opaque strings instead of JWTs.
        reported_expires_in: when set, the ``expires_in`` sent instead of the real
            lifetime (the JWT ``exp`` keeps the real one), to test clients that must take
            the earlier of the two.
        scope_claim: the JWT's scope claim: ``"scope"`` (RFC 9068), ``"scp"`` (a list)
            or ``""`` (none).
        serve_rfc8414: False answers 404 at the RFC 8414 metadata URL.
        jwks_override: when set, the JWK Set served instead of the real one (to publish
            keys with a wrong ``use`` or ``alg``).
        serve_openid_configuration: False answers 404 at the OpenID Connect one.
        token_type: the ``token_type`` of token responses.
        metadata_overrides: merged into the discovery metadata.
        document_trickle: when positive, metadata and JWK Set documents are sent in
            8-byte chunks spread over this many seconds (a body split across many TCP
            segments, which a client must read whole).
        requests_log: a `RequestRecord` per token request since the last reset.
        dpop: DPoP (RFC 9449) settings and counters (see `DevDPoP`): token requests with
            a valid ``DPoP`` proof get DPoP-bound tokens, and the protected resource
            accepts those only with ``Authorization: DPoP`` and a valid proof.

    Args:
        token_lifetime: initial ``token_lifetime``.
        latency: initial ``latency``.
        port: port to listen on; 0 picks a free one.
        issuer_path: a path for the issuer, e.g. ``"/tenant1"`` (RFC 8414 §3.1).
        ssl_context: serve HTTPS with this context; enables ``tls_client_auth``.
    """

    def __init__(
        self,
        token_lifetime: float = 3600.0,
        latency: float = 0.0,
        *,
        port: int = 0,
        issuer_path: str = "",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.token_lifetime = token_lifetime
        self.latency = latency
        self.include_expires_in = True
        self.include_scope = True
        self.opaque_tokens = False
        self.reported_expires_in: float | None = None
        self.scope_claim = "scope"
        self.serve_rfc8414 = True
        self.serve_openid_configuration = True
        self.jwks_override: dict[str, Any] | None = None
        self.token_type = "Bearer"
        self.metadata_overrides: dict[str, Any] = {}
        self.document_trickle = 0.0
        self.requests_log: list[RequestRecord] = []
        self._port = port
        self._path = "/" + issuer_path.strip("/") if issuer_path.strip("/") else ""
        self._ssl_context = ssl_context
        self._clients: dict[str, RegisteredClient] = {}
        self._authenticator = ClientAuthenticator(self._clients)
        self._keys = KeyRing()
        self._minter = TokenMinter(self._keys)
        self._faults = FaultPlan()
        self.dpop = DevDPoP()
        self._counters = Counters()
        self._runner: web.AppRunner | None = None
        self.client_id = "dev-client"
        # 64 characters: long enough for HS512 client assertions (RFC 7518 §3.2).
        self.client_secret = secrets.token_urlsafe(48)
        self.register_client(self.client_id, self.client_secret, auth_methods=_DEFAULT_METHODS)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening on the current event loop."""
        if self._runner is not None:
            raise RuntimeError("DevAuthServer is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._port))
            runner = web.AppRunner(
                self._make_app(), handle_signals=False, access_log=None, shutdown_timeout=1.0
            )
            await runner.setup()
        except BaseException:
            sock.close()
            raise
        site = web.SockSite(runner, sock, ssl_context=self._ssl_context, backlog=1024)
        try:
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and close open connections; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def aclose(self) -> None:
        """Same as :meth:`stop` (``async with`` stops the server on the way out)."""
        await self.stop()

    async def __aenter__(self) -> DevAuthServer:
        await self.start()
        return self

    def run_in_thread(self) -> ServerThread[DevAuthServer]:
        """A context manager that runs this server in a new thread with its own loop.

        Entering starts the thread and waits until the server listens; leaving stops the
        server, closes the loop and joins the thread.
        """
        return ServerThread(self)

    # -- clients -----------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        public_key: str | bytes | None = None,
        auth_methods: Iterable[str] = ("client_secret_basic", "client_secret_post"),
        scopes: Iterable[str] | None = None,
        default_scopes: Iterable[str] = (),
        audiences: Iterable[str] | None = None,
        resources: Iterable[str] | None = None,
        grant_fewer_scopes: Iterable[str] = (),
        grant_allowed: bool = True,
        tls_client_cn: str | None = None,
    ) -> None:
        """Register (or replace) a client.

        Args:
            client_id: the client identifier.
            client_secret: the secret, for the ``client_secret_*`` methods.
            public_key: PEM public key (RSA or EC) for ``private_key_jwt``.
            auth_methods: the token endpoint auth methods this client may use.
            scopes: allowed scopes; None allows any, others answer ``invalid_scope``.
            default_scopes: granted when a request asks for no scope.
            audiences: allowed ``audience`` values; None allows any.
            resources: allowed ``resource`` values (RFC 8707); None allows any.
            grant_fewer_scopes: scopes silently left out of the grant.
            grant_allowed: False answers ``unauthorized_client``.
            tls_client_cn: certificate subject CN for ``tls_client_auth``; defaults to
                ``client_id``.

        Raises:
            ValueError: the registration cannot work (e.g. secret methods, no secret).
        """
        self._clients[client_id] = new_client(
            client_id,
            client_secret,
            public_key=public_key,
            auth_methods=auth_methods,
            scopes=scopes,
            default_scopes=default_scopes,
            audiences=audiences,
            resources=resources,
            grant_fewer_scopes=grant_fewer_scopes,
            grant_allowed=grant_allowed,
            tls_client_cn=tls_client_cn,
        )

    # -- knobs -------------------------------------------------------------------------

    def inject_fault(
        self, fault: Fault, *, count: int | None = None, ratio: float | None = None
    ) -> None:
        """Misbehave on the next ``count`` token requests, or on a random ``ratio`` of them.

        With neither, every token request gets the fault until `clear_faults`.
        """
        self._faults.inject(fault, count=count, ratio=ratio)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def rotate_key(self) -> None:
        """Sign with a new key; the JWKS keeps the previous key and drops the one before."""
        self._keys.rotate()

    def revoke(self, access_token: str) -> None:
        """Make the protected resource reject ``access_token``."""
        self._minter.revoke(access_token)

    @property
    def signing_key_pem(self) -> bytes:
        """The current private signing key, PKCS#8 PEM (to forge or tamper tokens)."""
        return self._keys.current.private_pem

    @property
    def signing_key_id(self) -> str:
        """The ``kid`` of the current signing key."""
        return self._keys.current.kid

    @property
    def public_jwks(self) -> dict[str, Any]:
        """The JWK Set served at ``jwks_url``."""
        return self._keys.jwks()

    # -- counters ----------------------------------------------------------------------

    def token_requests(self, client_id: str | None = None) -> int:
        """POSTs to the token endpoint (failed and faulted ones too), per client or all."""
        return self._counters.requests(client_id)

    def issued_tokens(self, client_id: str | None = None) -> int:
        """Access tokens issued, per client or all."""
        return self._counters.issued(client_id)

    @property
    def resource_requests(self) -> int:
        """Requests to the protected resource, accepted or not."""
        return self._counters.resource_requests

    @property
    def jwks_requests(self) -> int:
        """GETs of the JWK Set."""
        return self._counters.jwks_requests

    @property
    def metadata_requests(self) -> int:
        """GETs of either discovery document (404s included)."""
        return self._counters.metadata_requests

    def reset_counters(self) -> None:
        """Zero every counter and empty ``requests_log``."""
        self._counters = Counters()
        self.requests_log = []
        self.dpop.reset()

    def stats(self) -> dict[str, Any]:
        """The counters, as served at ``/stats``."""
        return self._counters.as_json()

    # -- HTTP ----------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        path = self._path
        app.router.add_post(f"{path}/token", self._handle_token)
        app.router.add_get(f"{path}/jwks", self._handle_jwks)
        app.router.add_get(f"{path}/stats", self._handle_stats)
        app.router.add_route("*", f"{path}/resource", self._handle_resource)
        app.router.add_route("*", f"{path}/resource/{{tail:.*}}", self._handle_resource)
        # RFC 8414 §3.1 inserts the issuer path after /.well-known/...; OpenID Connect
        # Discovery §4 appends /.well-known/openid-configuration to the issuer.
        app.router.add_get(f"/.well-known/oauth-authorization-server{path}", self._handle_rfc8414)
        app.router.add_get(f"{path}/.well-known/openid-configuration", self._handle_oidc)
        return app

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats(), headers=NO_STORE)
