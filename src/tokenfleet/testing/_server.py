"""`DevAuthServer`: a small, real OAuth 2.0 authorization server on loopback.

It serves the client credentials grant (RFC 6749 §4.4) with every client authentication
method, RS256 JWT access tokens (RFC 9068), a JWKS, discovery metadata (RFC 8414) and a
protected resource, and lets a test change its behaviour while it runs: token lifetime,
latency, response shape, injected faults, key rotation and revocation.

It deliberately imports nothing from tokenfleet outside ``tokenfleet.testing``, so it
tests the client honestly.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .._util.closing import AsyncClosing
from ._admin import ClientAdmin
from ._clients import (
    ASSERTION_ALGS,
    AUTH_METHODS,
    ClientAuthenticator,
    ClientRequest,
    RegisteredClient,
    claimed_client_id,
    decide_grant,
    new_client,
)
from ._counters import Counters, RequestRecord
from ._dpop import DevDPoP, DPoPProblem
from ._errors import NO_STORE, OAuthProblem, invalid_request, json_response
from ._faults import Fault, FaultPlan, malformed_response, trickle
from ._keys import KeyRing
from ._thread import ServerThread
from ._tokens import Grant, TokenMinter
from ._wire import (
    Form,
    bearer_token,
    drop_connection,
    parse_form,
    peer_common_name,
    unauthorized,
)

_REALM = 'realm="tokenfleet-dev"'
_DEFAULT_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


class DevAuthServer(ClientAdmin, AsyncClosing):
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

    # -- addresses ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT`` (without the issuer path)."""
        if self._runner is None:
            raise RuntimeError("DevAuthServer is not running")
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def issuer(self) -> str:
        """The issuer identifier: ``url`` plus the issuer path, if any."""
        return self.url + self._path

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self.issuer + "/token"

    @property
    def jwks_url(self) -> str:
        """The JWK Set document."""
        return self.issuer + "/jwks"

    @property
    def resource_url(self) -> str:
        """A protected resource that accepts this server's access tokens."""
        return self.issuer + "/resource"

    @property
    def stats_url(self) -> str:
        """The JSON counters."""
        return self.issuer + "/stats"

    @property
    def metadata_url(self) -> str:
        """The RFC 8414 metadata URL (path inserted after ``/.well-known/``, §3.1)."""
        return f"{self.url}/.well-known/oauth-authorization-server{self._path}"

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

    @property
    def openid_configuration_url(self) -> str:
        """The OpenID Connect Discovery URL (appended to the issuer, OIDC Discovery §4)."""
        return self.issuer + "/.well-known/openid-configuration"

    def reset_counters(self) -> None:
        """Zero every counter and empty ``requests_log``."""
        self._counters = Counters()
        self.requests_log = []
        self.dpop.reset()

    def stats(self) -> dict[str, Any]:
        """The counters, as served at ``/stats``."""
        return self._counters.as_json()

    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 authorization server metadata, with ``metadata_overrides`` applied."""
        tls = self._ssl_context is not None
        methods = sorted(m for m in AUTH_METHODS if tls or m != "tls_client_auth")
        metadata: dict[str, Any] = {
            "issuer": self.issuer,
            "token_endpoint": self.token_url,
            "jwks_uri": self.jwks_url,
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "grant_types_supported": ["client_credentials"],
        }
        clients = list(self._clients.values())  # a snapshot: other threads may register
        scopes = set().union(*(c.scopes for c in clients if c.scopes is not None))
        if scopes:
            metadata["scopes_supported"] = sorted(scopes)
        return {**metadata, **self.metadata_overrides}

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

    async def _document(self, request: web.Request, document: Any) -> web.StreamResponse:
        response = json_response(document)
        if self.document_trickle <= 0:
            return response
        return await trickle(request, response, self.document_trickle)

    async def _handle_jwks(self, request: web.Request) -> web.StreamResponse:
        self._counters.jwks_requests += 1
        override = self.jwks_override
        return await self._document(request, self.public_jwks if override is None else override)

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats(), headers=NO_STORE)

    async def _handle_rfc8414(self, request: web.Request) -> web.StreamResponse:
        self._counters.metadata_requests += 1
        if not self.serve_rfc8414:
            return json_response({"error": "not_found"}, status=404)
        return await self._document(request, self.metadata())

    async def _handle_oidc(self, request: web.Request) -> web.StreamResponse:
        self._counters.metadata_requests += 1
        if not self.serve_openid_configuration:
            return json_response({"error": "not_found"}, status=404)
        return await self._document(request, self.metadata())

    async def _handle_resource(self, request: web.Request) -> web.Response:
        self._counters.resource_requests += 1
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "dpop":
            return self._dpop_resource(request, credential.strip())
        token = bearer_token(request.headers.get("Authorization", ""), self.token_type)
        if token is None:
            # RFC 6750 §3.1: no error code when the request had no credentials.
            return unauthorized(f"Bearer {_REALM}", None)
        holder = self._minter.holder(token, self.issuer)
        if holder is None or holder.jkt is not None:  # a DPoP-bound token is not a bearer one
            challenge = f'Bearer {_REALM}, error="invalid_token"'
            return unauthorized(challenge, "invalid_token")
        return json_response({"ok": True, "sub": holder.sub, "scope": holder.scope})

    def _dpop_resource(self, request: web.Request, token: str) -> web.Response:
        """``Authorization: DPoP`` (RFC 9449 §7): a bound token and a valid proof."""
        holder = self._minter.holder(token, self.issuer) if token else None
        if holder is not None and holder.jkt is None and self.token_type.lower() == "dpop":
            # the token_type knob labels unbound tokens "DPoP": accepted as they are
            return json_response({"ok": True, "sub": holder.sub, "scope": holder.scope})
        try:
            if holder is None or holder.jkt is None:
                raise DPoPProblem("invalid_token", "not a valid DPoP-bound token")
            proofs = request.headers.getall("DPoP", [])
            url = str(request.url)
            self.dpop.resource_request(proofs, request.method, url, token, holder.jkt)
        except DPoPProblem as problem:
            response = unauthorized(f'DPoP {_REALM}, error="{problem.error}"', problem.error)
            response.headers.update(self.dpop.nonce_header(at_token=False))
            return response
        body = {"ok": True, "sub": holder.sub, "scope": holder.scope, "jkt": holder.jkt}
        return json_response(body, headers=self.dpop.nonce_header(at_token=False))

    async def _handle_token(self, request: web.Request) -> web.StreamResponse:
        arrival = time.monotonic()
        body = await request.read()
        form = parse_form(request.content_type, body)
        client_request = ClientRequest(
            params=form.params if isinstance(form, Form) else {},
            authorization=request.headers.get("Authorization"),
            peer_cn=peer_common_name(request) if self._ssl_context else None,
        )
        record = RequestRecord(arrival, claimed_client_id(client_request))
        self.requests_log.append(record)
        self._counters.count_request(record.client_id)
        try:
            response = await self._answer(request, form, client_request)
        except BaseException:
            record.status = 0
            raise
        record.status = response.status
        return response

    async def _answer(
        self, request: web.Request, form: Form | OAuthProblem, client_request: ClientRequest
    ) -> web.StreamResponse:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        fault = self._faults.next_fault()
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.drop_connection:
                drop_connection(request)
            if fault.malformed_json:
                return malformed_response()
            if fault.slow_body <= 0:
                return fault.response()
        response = self._token_response(form, client_request, request.headers.getall("DPoP", []))
        response.headers.update(self.dpop.nonce_header(at_token=True))
        if fault is None:
            return response
        return await trickle(request, response, fault.slow_body)

    def _token_response(
        self, form: Form | OAuthProblem, client_request: ClientRequest, proofs: list[str]
    ) -> web.Response:
        try:
            if isinstance(form, OAuthProblem):
                raise form
            try:
                jkt = self.dpop.token_request(proofs, self.token_url)
            except DPoPProblem as problem:  # RFC 9449 §5 and §8: 400 with the error code
                raise OAuthProblem(problem.error, problem.description) from None
            return self._issue(form, client_request, jkt)
        except OAuthProblem as problem:
            return problem.response()

    def _issue(
        self, form: Form, client_request: ClientRequest, jkt: str | None = None
    ) -> web.Response:
        """The client credentials grant, RFC 6749 §4.4.2 and §4.4.3."""
        grant_type = form.params.get("grant_type")
        if grant_type is None:
            raise invalid_request("grant_type is missing")
        if grant_type != "client_credentials":
            raise OAuthProblem("unsupported_grant_type", "only client_credentials is supported")
        audiences = (self.token_url, self.issuer)
        client = self._authenticator.authenticate(client_request, audiences)
        grant = decide_grant(client, form.params, form.resources, self.resource_url)
        lifetime = self.token_lifetime
        token = self._minter.issue(
            grant,
            self.issuer,
            lifetime,
            opaque=self.opaque_tokens,
            scope_claim=self.scope_claim,
            jkt=jkt,
        )
        self._counters.count_issued(client.client_id)
        body = self._token_body(token, grant, lifetime, "DPoP" if jkt else self.token_type)
        return json_response(body, headers=NO_STORE)

    def _token_body(
        self, token: str, grant: Grant, lifetime: float, token_type: str
    ) -> dict[str, Any]:
        """The RFC 6749 §5.1 token response (``token_type`` DPoP: RFC 9449 §5)."""
        body: dict[str, Any] = {"access_token": token, "token_type": token_type}
        if self.include_expires_in:
            if self.reported_expires_in is not None:
                lifetime = self.reported_expires_in
            body["expires_in"] = int(lifetime) if float(lifetime).is_integer() else lifetime
        if self.include_scope:
            body["scope"] = " ".join(grant.scopes)
        return body
