"""The token endpoint of ``DevAuthServer``: the client credentials grant (RFC 6749 §4.4)
with its knobs (latency, injected faults, response shape) and DPoP binding (RFC 9449)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from ._addresses import ServerAddresses
from ._clients import ClientAuthenticator, ClientRequest, claimed_client_id, decide_grant
from ._counters import Counters, RequestRecord
from ._dpop import DevDPoP, DPoPProblem
from ._errors import NO_STORE, OAuthProblem, invalid_request, json_response
from ._faults import FaultPlan, malformed_response, trickle
from ._tokens import Grant, TokenMinter
from ._wire import Form, drop_connection, parse_form, peer_common_name

__all__ = ["TokenEndpoint"]


class TokenEndpoint(ServerAddresses):
    """The ``/token`` handler of ``DevAuthServer`` (a base class: the server sets the
    fields below; see its docstring for what each knob does)."""

    token_lifetime: float
    latency: float
    include_expires_in: bool
    include_scope: bool
    opaque_tokens: bool
    reported_expires_in: float | None
    scope_claim: str
    token_type: str
    requests_log: list[RequestRecord]
    dpop: DevDPoP
    _authenticator: ClientAuthenticator
    _minter: TokenMinter
    _faults: FaultPlan
    _counters: Counters

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
