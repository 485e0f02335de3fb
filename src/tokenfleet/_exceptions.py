"""The tokenfleet error tree.

Every error tokenfleet raises on purpose derives from :class:`TokenFleetError`::

    TokenFleetError
    ├── ConfigurationError            bad arguments or settings (also a ValueError)
    ├── TokenEndpointError            the token endpoint did not give us a token
    │   ├── OAuthError                an RFC 6749 §5.2 error response
    │   │   ├── InvalidRequest
    │   │   ├── InvalidClient
    │   │   ├── InvalidGrant
    │   │   ├── UnauthorizedClient
    │   │   ├── UnsupportedGrantType
    │   │   ├── InvalidScope
    │   │   └── InvalidTarget         RFC 8707 §2
    │   ├── ServerError               HTTP 5xx
    │   ├── RateLimited               HTTP 429 (``retry_after`` in seconds)
    │   ├── InvalidTokenResponse      a 2xx (or error) body we cannot use
    │   └── FleetCooldown             another process saw the endpoint fail; backing off
    ├── TransportError                connection, DNS, TLS, timeout
    │   └── FetchTimeout              the whole fetch ran out of time (also a TimeoutError)
    ├── InsufficientScope             fewer scopes granted than required
    └── StoreError                    a token store failed (only raised with fail_open=False)

Messages never contain a client secret, a client assertion or an access token: the
RFC 6749 §5.2 fields are kept as attributes (as Go's ``RetrieveError`` does), and the
server's ``error_description`` is shown only after being cut to a sane length.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "FetchTimeout",
    "FleetCooldown",
    "InsufficientScope",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "InvalidTokenResponse",
    "OAuthError",
    "RateLimited",
    "ServerError",
    "StoreError",
    "TokenEndpointError",
    "TokenFleetError",
    "TransportError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
]


class TokenFleetError(Exception):
    """Base class of every error tokenfleet raises on purpose."""


class ConfigurationError(TokenFleetError, ValueError):
    """An argument or setting is wrong; the message says which and how to fix it."""


class TokenEndpointError(TokenFleetError):
    """The token endpoint answered, but not with a usable token.

    Attributes:
        status: the HTTP status code, or ``None`` when not applicable.
        error: the RFC 6749 §5.2 ``error`` code, when the body had one.
        error_description: the server's human-readable text, when given.
        error_uri: a URI with more information, when given.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
        error_uri: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, status={self.status!r}, error={self.error!r})"
        )


class OAuthError(TokenEndpointError):
    """An RFC 6749 §5.2 error response. Unknown codes stay plain ``OAuthError``."""


class InvalidRequest(OAuthError):
    """``invalid_request``: a parameter is missing, repeated or malformed."""


class InvalidClient(OAuthError):
    """``invalid_client``: client authentication failed (wrong id, secret, key or method)."""


class InvalidGrant(OAuthError):
    """``invalid_grant``: the grant is invalid, expired or revoked."""


class UnauthorizedClient(OAuthError):
    """``unauthorized_client``: this client may not use the client-credentials grant."""


class UnsupportedGrantType(OAuthError):
    """``unsupported_grant_type``: the server does not support client credentials."""


class InvalidScope(OAuthError):
    """``invalid_scope``: a requested scope is unknown or not allowed for this client."""


class InvalidTarget(OAuthError):
    """``invalid_target`` (RFC 8707 §2): the resource or audience is not allowed."""


class ServerError(TokenEndpointError):
    """The token endpoint answered with an HTTP 5xx status."""


class RateLimited(TokenEndpointError):
    """The token endpoint answered HTTP 429.

    Attributes:
        retry_after: seconds the server asked us to wait, or ``None``.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class InvalidTokenResponse(TokenEndpointError):
    """The response body is not a usable RFC 6749 §5.1 token response."""


class FleetCooldown(TokenEndpointError):
    """A process of the fleet recorded a cooldown for this token (429, 5xx, or refused
    credentials), so this process does not ask the token endpoint either until it ends.

    Attributes:
        until: Unix time at which the cooldown ends.
        reason: what the recording process saw (an exception class name and status).
    """

    def __init__(self, message: str, *, until: float, reason: str) -> None:
        super().__init__(message)
        self.until = until
        self.reason = reason


class TransportError(TokenFleetError):
    """The token endpoint could not be reached: connection, DNS, TLS or timeout."""


class FetchTimeout(TransportError, TimeoutError):
    """The fetch, retries included, did not finish within its total timeout."""


class InsufficientScope(TokenFleetError):
    """The server granted fewer scopes than were required.

    Attributes:
        requested: the scopes asked for.
        granted: the scopes the server granted.
    """

    def __init__(self, message: str, *, requested: tuple[str, ...], granted: tuple[str, ...]):
        super().__init__(message)
        self.requested = requested
        self.granted = granted


class StoreError(TokenFleetError):
    """A token store (file, Redis, ...) failed; raised only when ``fail_open=False``."""


_OAUTH_ERRORS: dict[str, type[OAuthError]] = {
    "invalid_request": InvalidRequest,
    "invalid_client": InvalidClient,
    "invalid_grant": InvalidGrant,
    "unauthorized_client": UnauthorizedClient,
    "unsupported_grant_type": UnsupportedGrantType,
    "invalid_scope": InvalidScope,
    "invalid_target": InvalidTarget,
}


def oauth_error_class(code: str) -> type[OAuthError]:
    """The exception class for an RFC 6749 §5.2 ``error`` code (``OAuthError`` if unknown)."""
    return _OAUTH_ERRORS.get(code, OAuthError)
