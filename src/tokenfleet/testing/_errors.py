"""OAuth error responses of the dev authorization server (RFC 6749 §5.2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

# RFC 6749 §5.1: token responses and errors must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
BASIC_CHALLENGE = 'Basic realm="tokenfleet-dev"'


class OAuthProblem(Exception):
    """An error the token endpoint answers with, as RFC 6749 §5.2 JSON."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # RFC 6749 §5.2: error_description is printable ASCII without '"' and '\\'.
        description = "".join(
            c if " " <= c <= "~" and c not in '"\\' else "?" for c in description
        )
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        """The HTTP response for this error."""
        body = {"error": self.error, "error_description": self.description}
        return json_response(body, status=self.status, headers={**NO_STORE, **self.headers})


def invalid_client(description: str) -> OAuthProblem:
    """401 ``invalid_client``, with a Basic challenge as RFC 6749 §5.2 asks."""
    return OAuthProblem(
        "invalid_client", description, status=401, headers={"WWW-Authenticate": BASIC_CHALLENGE}
    )


def invalid_request(description: str) -> OAuthProblem:
    """400 ``invalid_request``."""
    return OAuthProblem("invalid_request", description)


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )
