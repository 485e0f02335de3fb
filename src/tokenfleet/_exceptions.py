"""The tokenfleet error tree.

Every error tokenfleet raises on purpose derives from :class:`TokenFleetError`::

    TokenFleetError
    ├── ConfigurationError            bad arguments or settings (also a ValueError)
    │   └── UnsupportedAuthMethod     the server's metadata does not list our auth_method
    ├── TokenEndpointError            the token endpoint did not give us a token
    │   ├── OAuthError                an RFC 6749 §5.2 error response
    │   │   ├── InvalidRequest
    │   │   ├── InvalidClient
    │   │   ├── InvalidGrant
    │   │   ├── UnauthorizedClient
    │   │   ├── UnsupportedGrantType
    │   │   ├── InvalidScope
    │   │   ├── InvalidTarget         RFC 8707 §2
    │   │   ├── EndpointNotFound      HTTP 404/405 with no error body: no token endpoint there
    │   │   ├── InvalidDPoPProof      RFC 9449 §5: the server refused our DPoP proof
    │   │   └── UseDPoPNonce          RFC 9449 §8: a nonce was still demanded after one retry
    │   ├── ServerError               HTTP 5xx (``retry_after`` in seconds)
    │   ├── RateLimited               HTTP 429 (``retry_after`` in seconds)
    │   ├── InvalidTokenResponse      a 2xx (or error) body we cannot use
    │   │   └── DPoPDowngrade         a Bearer token answered a DPoP request (RFC 9449 §5)
    │   └── FleetCooldown             another process saw the endpoint fail; backing off
    ├── TransportError                connection, DNS, TLS, timeout (token, metadata, JWKS)
    │   └── FetchTimeout              the whole fetch ran out of time (also a TimeoutError)
    ├── CredentialError               a credential source (file, callable) gave nothing usable
    ├── InsufficientScope             fewer scopes granted than required
    ├── StoreError                    a token store failed (only raised with fail_open=False)
    │   └── DPoPKeyNotSealed          a shared store without a cipher was given a DPoP key
    ├── DiscoveryError                no usable server metadata or JWK Set (RFC 8414, 7517)
    │   └── IssuerMismatch            the metadata names another issuer (RFC 8414 §3.3)
    └── TokenVerificationError        ``JWTVerifier`` refused a token
        ├── MalformedToken            not a compact JWS, bad JSON, a bad or missing claim
        ├── DisallowedAlgorithm       none, HMAC, not allowed, or not the key's alg/kty
        ├── UnknownKey                no signing key with that kid (after one refresh)
        ├── InvalidSignature          the signature does not verify
        ├── TokenExpired              ``exp`` is past, beyond the leeway
        ├── TokenNotYetValid          ``nbf`` is ahead, beyond the leeway
        ├── InvalidIssuer             ``iss`` is not the expected issuer
        ├── InvalidAudience           ``aud`` names none of the expected audiences
        └── DPoPProofError            a DPoP-bound token's proof is refused (RFC 9449 §4.3)
            ├── DPoPProofMissing      a DPoP-bound token without a proof (or sent as Bearer)
            ├── MalformedDPoPProof    not a dpop+jwt JWS, a bad jwk, a missing claim
            ├── DPoPSignatureInvalid  the proof's signature does not verify with its jwk
            ├── DPoPMethodMismatch    ``htm`` is not the request's method
            ├── DPoPUrlMismatch       ``htu`` is not the request's URL
            ├── DPoPProofExpired      ``iat`` outside the accepted window
            ├── DPoPProofReplayed     ``jti`` seen before within the window
            ├── DPoPTokenHashMismatch ``ath`` is not the hash of the presented token
            ├── DPoPKeyMismatch       the proof key is not the token's ``cnf.jkt``
            └── DPoPNonceRequired     the proof lacks the server's current nonce

The ``TokenVerificationError`` subtree lives beside the verifiers, in ``_jwt/errors.py``.

Messages never contain a client secret, a client assertion or an access token (claims of
a refused token may appear: they are not credentials); the
RFC 6749 §5.2 fields are kept as attributes (as Go's ``RetrieveError`` does), and the
server's ``error_description`` is shown only after being cut to a sane length.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "CredentialError",
    "DPoPDowngrade",
    "DPoPKeyNotSealed",
    "DiscoveryError",
    "EndpointNotFound",
    "FetchTimeout",
    "FleetCooldown",
    "InsufficientScope",
    "InvalidClient",
    "InvalidDPoPProof",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "InvalidTokenResponse",
    "IssuerMismatch",
    "OAuthError",
    "RateLimited",
    "ServerError",
    "StoreError",
    "TokenEndpointError",
    "TokenFleetError",
    "TransportError",
    "UnauthorizedClient",
    "UnsupportedAuthMethod",
    "UnsupportedGrantType",
    "UseDPoPNonce",
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


class EndpointNotFound(OAuthError):
    """HTTP 404 or 405 with no RFC 6749 §5.2 body: there is no token endpoint at this URL.

    A configuration error (a wrong path, or the issuer given as the token URL), not a
    refusal of the credentials.
    """


class InvalidDPoPProof(OAuthError):
    """``invalid_dpop_proof`` (RFC 9449 §5): the server refused the DPoP proof we sent.

    Usually a clock far off (``iat``), or a server that does not accept the key's ``alg``.
    """


class UseDPoPNonce(OAuthError):
    """``use_dpop_nonce`` (RFC 9449 §8) even after one retry with the server's nonce."""


class ServerError(TokenEndpointError):
    """The token endpoint answered with an HTTP 5xx status.

    Attributes:
        retry_after: seconds the server asked us to wait (``Retry-After`` on a 503 or
            another 5xx, RFC 9110 §10.2.3), or ``None``.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


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


class DPoPDowngrade(InvalidTokenResponse):
    """We sent a DPoP proof and the server answered with a ``Bearer`` token (RFC 9449 §5).

    The token is not bound to our key: anyone who copies it can use it. Pass
    ``allow_dpop_downgrade=True`` to ``ClientCredentials`` to accept such tokens knowingly.
    """


class TransportError(TokenFleetError):
    """The authorization server (token endpoint, metadata, JWKS) could not be reached.

    Connection, DNS, TLS or timeout; the message names the URL.
    """


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


class CredentialError(TokenFleetError):
    """A credential source could not give a usable credential.

    A secret, key, certificate or assertion file that is missing, unreadable, empty or
    not what it should be; a client assertion past its own ``exp``; a callable source that
    raised or returned something else than a credential. The message names the file (or
    the callable) and what to check; it never contains the credential.

    Attributes:
        source: the file path or the callable's name.
    """

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class StoreError(TokenFleetError):
    """A token store (file, Redis, ...) failed; raised only when ``fail_open=False``."""


class DPoPKeyNotSealed(StoreError):
    """A shared store without a cipher was asked to hold a DPoP-bound token.

    The token is useless without its private key, and the key must not lie in a cache in
    clear: give the store a cipher (``RedisStore(..., cipher=AesGcmCipher(...))``).
    ``TokenManager`` avoids this by keeping DPoP tokens per process (with one WARNING).
    """


class UnsupportedAuthMethod(ConfigurationError):
    """The server's metadata does not list the configured ``auth_method`` (RFC 8414 §2).

    Attributes:
        auth_method: the method the client is configured with.
        supported: the ``token_endpoint_auth_methods_supported`` of the metadata.
    """

    def __init__(self, message: str, *, auth_method: str, supported: tuple[str, ...]) -> None:
        super().__init__(message)
        self.auth_method = auth_method
        self.supported = supported


class DiscoveryError(TokenFleetError):
    """No usable authorization server metadata (RFC 8414) or JWK Set (RFC 7517).

    Raised when no metadata URL answered with a valid document, the document lacks a
    required member or names a plain-http endpoint, or the JWK Set is not one. A server
    that cannot be reached at all raises :class:`TransportError` instead.
    """


class IssuerMismatch(DiscoveryError):
    """The metadata's ``issuer`` differs from the issuer asked for (RFC 8414 §3.3).

    This is the mix-up attack check: another server's metadata must not be used.

    Attributes:
        expected: the issuer the client was configured with.
        actual: the ``issuer`` the metadata document claims.
    """

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


_OAUTH_ERRORS: dict[str, type[OAuthError]] = {
    "invalid_request": InvalidRequest,
    "invalid_client": InvalidClient,
    "invalid_grant": InvalidGrant,
    "unauthorized_client": UnauthorizedClient,
    "unsupported_grant_type": UnsupportedGrantType,
    "invalid_scope": InvalidScope,
    "invalid_target": InvalidTarget,
    "invalid_dpop_proof": InvalidDPoPProof,
    "use_dpop_nonce": UseDPoPNonce,
}


def oauth_error_class(code: str) -> type[OAuthError]:
    """The exception class for an RFC 6749 §5.2 ``error`` code (``OAuthError`` if unknown)."""
    return _OAUTH_ERRORS.get(code, OAuthError)
