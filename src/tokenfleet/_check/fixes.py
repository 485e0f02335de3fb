"""What to do about each way a token request can fail: the ``fix`` of a failed check."""

from __future__ import annotations

from .._client.credentials import ClientCredentials
from .._exceptions import (
    CredentialError,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    InvalidTokenResponse,
    OAuthError,
    RateLimited,
    ServerError,
    TransportError,
    UnauthorizedClient,
    UnsupportedGrantType,
)

__all__ = ["fix_for"]


def fix_for(exc: BaseException, client: ClientCredentials) -> str:
    """One sentence an operator can act on."""
    for kind, fix in _FIXES:
        if isinstance(exc, kind):
            return fix(client, exc)
    return f"see the error above; the token endpoint is {_endpoint(client)}"


def _endpoint(client: ClientCredentials) -> str:
    return client.token_url or f"the one {client.issuer} names"


def _invalid_client(client: ClientCredentials, exc: BaseException) -> str:
    return (
        f"check the client id ({client.client_id}) and its credentials "
        "(TOKENFLEET_CLIENT_SECRET / TOKENFLEET_CLIENT_SECRET_FILE / the private key), and "
        f"that the server allows auth method {client.auth_method} for this client"
    )


def _unauthorized(client: ClientCredentials, exc: BaseException) -> str:
    return f"allow the client_credentials grant for client {client.client_id} at the server"


def _unsupported(client: ClientCredentials, exc: BaseException) -> str:
    return "this server does not do client credentials at this URL: is it the token endpoint?"


def _scope(client: ClientCredentials, exc: BaseException) -> str:
    asked = " ".join(client.scopes) or "(none)"
    return f"request only scopes registered for client {client.client_id} (asked: {asked})"


def _target(client: ClientCredentials, exc: BaseException) -> str:
    return "check --audience / --resource against what the server allows for this client"


def _request(client: ClientCredentials, exc: BaseException) -> str:
    return "the server rejected the request's form: check the auth method and parameters"


def _oauth(client: ClientCredentials, exc: BaseException) -> str:
    uri = getattr(exc, "error_uri", None)
    return "read the server's error description" + (f" and {uri}" if uri else "")


def _rate_limited(client: ClientCredentials, exc: BaseException) -> str:
    wait = getattr(exc, "retry_after", None)
    when = f"wait {wait:g} s, then retry; " if wait else ""
    return f"{when}give the fleet a shared store (--store) so it asks once per token lifetime"


def _server(client: ClientCredentials, exc: BaseException) -> str:
    return "the authorization server is failing: check its status and logs, then retry"


def _response(client: ClientCredentials, exc: BaseException) -> str:
    return (
        f"{_endpoint(client)} answered, but not with a token response: is it the token "
        "endpoint (not the issuer, a proxy or a login page)?"
    )


def _transport(client: ClientCredentials, exc: BaseException) -> str:
    return (
        f"is the URL right and the server up? try: curl -sS -o /dev/null -w '%{{http_code}}' "
        f"-X POST {_endpoint(client)}"
    )


def _credential(client: ClientCredentials, exc: BaseException) -> str:
    where = getattr(exc, "source", "")
    return f"fix {where}: the message above says what it holds and what to check"


_FIXES = (
    (CredentialError, _credential),
    (InvalidClient, _invalid_client),
    (UnauthorizedClient, _unauthorized),
    (UnsupportedGrantType, _unsupported),
    (InvalidScope, _scope),
    (InvalidTarget, _target),
    (InvalidRequest, _request),
    (OAuthError, _oauth),
    (RateLimited, _rate_limited),
    (ServerError, _server),
    (InvalidTokenResponse, _response),
    (TransportError, _transport),
)
