"""What ``DevAuthServer`` serves besides the token endpoint: the discovery metadata
(RFC 8414, OpenID Connect Discovery), the JWK Set and a protected resource that accepts
its Bearer (RFC 6750) and DPoP-bound (RFC 9449 §7) access tokens."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._addresses import ServerAddresses
from ._clients import ASSERTION_ALGS, AUTH_METHODS, RegisteredClient
from ._counters import Counters
from ._dpop import DevDPoP, DPoPProblem
from ._errors import json_response
from ._faults import trickle
from ._keys import KeyRing
from ._tokens import TokenMinter
from ._wire import bearer_token, unauthorized

__all__ = ["REALM", "ServedDocuments"]

REALM = 'realm="tokenfleet-dev"'


class ServedDocuments(ServerAddresses):
    """The metadata, JWKS and resource handlers of ``DevAuthServer`` (a base class)."""

    serve_rfc8414: bool
    serve_openid_configuration: bool
    jwks_override: dict[str, Any] | None
    metadata_overrides: dict[str, Any]
    document_trickle: float
    token_type: str
    dpop: DevDPoP
    _clients: dict[str, RegisteredClient]
    _keys: KeyRing
    _minter: TokenMinter
    _counters: Counters

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

    async def _document(self, request: web.Request, document: Any) -> web.StreamResponse:
        response = json_response(document)
        if self.document_trickle <= 0:
            return response
        return await trickle(request, response, self.document_trickle)

    async def _handle_jwks(self, request: web.Request) -> web.StreamResponse:
        self._counters.jwks_requests += 1
        override = self.jwks_override
        return await self._document(request, self._keys.jwks() if override is None else override)

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
            return unauthorized(f"Bearer {REALM}", None)
        holder = self._minter.holder(token, self.issuer)
        if holder is None or holder.jkt is not None:  # a DPoP-bound token is not a bearer one
            challenge = f'Bearer {REALM}, error="invalid_token"'
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
            response = unauthorized(f'DPoP {REALM}, error="{problem.error}"', problem.error)
            response.headers.update(self.dpop.nonce_header(at_token=False))
            return response
        body = {"ok": True, "sub": holder.sub, "scope": holder.scope, "jkt": holder.jkt}
        return json_response(body, headers=self.dpop.nonce_header(at_token=False))
