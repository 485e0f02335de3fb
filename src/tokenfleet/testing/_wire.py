"""HTTP details of the dev authorization server: form bodies, credentials, connections."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import parse_qsl

from aiohttp import web

from ._errors import OAuthProblem, invalid_request, json_response

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Form:
    """A parsed token request body: single-valued parameters, and repeatable ``resource``."""

    params: dict[str, str]
    resources: list[str]


def parse_form(content_type: str, body: bytes) -> Form | OAuthProblem:
    """Parse the token request body (RFC 6749 §4.4.2, Appendix B), or say what is wrong."""
    if content_type != FORM:
        return invalid_request(f"Content-Type must be {FORM}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return invalid_request("malformed form body")
    params: dict[str, str] = {}
    resources: list[str] = []
    for name, value in pairs:
        if not value:
            continue  # RFC 6749 §3.1: a parameter without a value counts as omitted.
        if name == "resource":
            resources.append(value)  # RFC 8707 §2: resource may be repeated.
        elif name in params:
            return invalid_request(f"parameter {name} is repeated (RFC 6749 section 3.1)")
        else:
            params[name] = value
    return Form(params, resources)


def bearer_token(authorization: str, token_type: str) -> str | None:
    """The token of an ``Authorization: Bearer`` (or ``token_type``) header (RFC 6750 §2.1)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() in ("bearer", token_type.lower()) and token.strip():
        return token.strip()
    return None


def peer_common_name(request: web.Request) -> str | None:
    """The subject CN of the verified TLS client certificate, if any (RFC 8705 §2.1)."""
    if request.transport is None:
        return None
    cert = request.transport.get_extra_info("peercert")
    for rdn in (cert or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


def drop_connection(request: web.Request) -> NoReturn:
    """Close the connection without an answer; aiohttp then sends nothing."""
    if request.transport is not None:
        request.transport.close()
    # aiohttp treats a cancelled handler as a client disconnect and writes no response.
    raise asyncio.CancelledError


def unauthorized(challenge: str, error: str | None) -> web.Response:
    """A 401 from the protected resource with a ``WWW-Authenticate`` challenge (RFC 6750 §3)."""
    body = {"ok": False} if error is None else {"ok": False, "error": error}
    return json_response(body, status=401, headers={"WWW-Authenticate": challenge})
