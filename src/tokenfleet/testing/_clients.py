"""Registered clients and client authentication at the token endpoint.

Every method is really verified: ``client_secret_basic`` and ``client_secret_post``
(RFC 6749 §2.3.1), ``client_secret_jwt`` and ``private_key_jwt`` (RFC 7523 §2.2 and
OpenID Connect Core §9), ``tls_client_auth`` (RFC 8705 §2.1) and ``none`` (a public
client, RFC 6749 §2.1).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import unquote_plus, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.utils import base64url_decode

from ._errors import OAuthProblem, invalid_client, invalid_request
from ._federation import FederatedCredential, verify_federated
from ._tokens import Grant

SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})
AUTH_METHODS = SECRET_METHODS | {"private_key_jwt", "tls_client_auth", "none"}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_SPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
HMAC_ALGS = ("HS256", "HS384", "HS512")
RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGS = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
ASSERTION_ALGS = (*HMAC_ALGS, *RSA_ALGS, *EC_ALGS)
MAX_ASSERTION_LIFETIME = 300.0
CLOCK_SKEW = 60.0

_ALGORITHMS: dict[str, Algorithm] = get_default_algorithms()
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """What the server knows about one client (see ``DevAuthServer.register_client``)."""

    client_id: str
    client_secret: str | None
    public_key: PublicKey | None
    auth_methods: frozenset[str]
    scopes: frozenset[str] | None
    default_scopes: tuple[str, ...]
    audiences: frozenset[str] | None
    resources: frozenset[str] | None
    grant_fewer_scopes: frozenset[str]
    grant_allowed: bool
    tls_client_cn: str | None

    def __repr__(self) -> str:
        return f"RegisteredClient(client_id={self.client_id!r}, auth_methods={self.auth_methods})"


def new_client(
    client_id: str,
    client_secret: str | None,
    *,
    public_key: str | bytes | None,
    auth_methods: Iterable[str],
    scopes: Iterable[str] | None,
    default_scopes: Iterable[str],
    audiences: Iterable[str] | None,
    resources: Iterable[str] | None,
    grant_fewer_scopes: Iterable[str],
    grant_allowed: bool,
    tls_client_cn: str | None,
) -> RegisteredClient:
    """Validate a registration and build the client record; raise ValueError if unusable."""
    methods = frozenset(auth_methods)
    if unknown := methods - AUTH_METHODS:
        raise ValueError(f"unknown auth methods: {sorted(unknown)}")
    if methods & SECRET_METHODS and not client_secret:
        raise ValueError(f"{sorted(methods & SECRET_METHODS)} need a client_secret")
    if "private_key_jwt" in methods and public_key is None:
        raise ValueError("private_key_jwt needs a public_key")
    return RegisteredClient(
        client_id=client_id,
        client_secret=client_secret,
        public_key=None if public_key is None else load_public_key(public_key),
        auth_methods=methods,
        scopes=None if scopes is None else frozenset(scopes),
        default_scopes=tuple(default_scopes),
        audiences=None if audiences is None else frozenset(audiences),
        resources=None if resources is None else frozenset(resources),
        grant_fewer_scopes=frozenset(grant_fewer_scopes),
        grant_allowed=grant_allowed,
        tls_client_cn=tls_client_cn,
    )


def load_public_key(pem: str | bytes) -> PublicKey:
    """Load an RSA or EC public key from PEM; a private key PEM gives its public half."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key: Any = serialization.load_pem_public_key(data)
    except ValueError:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("public_key must be an RSA or EC key")
    return key


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """The parts of a token request that client authentication looks at."""

    params: Mapping[str, str]
    authorization: str | None
    peer_cn: str | None


def claimed_client_id(request: ClientRequest) -> str | None:
    """The client id a request claims to be from, unverified (for per-client counters)."""
    if request.authorization is not None:
        try:
            return _decode_basic(request.authorization)[0]
        except OAuthProblem:
            return None
    if "client_id" in request.params:
        return request.params["client_id"]
    if assertion := request.params.get("client_assertion"):
        try:
            iss = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return None
        return iss if isinstance(iss, str) else None
    return request.params.get("client_id")


def _decode_basic(authorization: str) -> tuple[str, str]:
    """Decode ``Basic base64(urlencode(id) ":" urlencode(secret))`` (RFC 6749 §2.3.1)."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client(f"unsupported authorization scheme {scheme[:20]!r}")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("malformed Basic credentials") from None
    # Split on the first ':' only: an encoded client id never contains one, a secret may.
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def _presented_methods(request: ClientRequest) -> list[str]:
    methods = []
    if request.authorization is not None:
        methods.append("client_secret_basic")
    if "client_secret" in request.params:
        methods.append("client_secret_post")
    if "client_assertion" in request.params or "client_assertion_type" in request.params:
        methods.append("jwt")
    return methods


class ClientAuthenticator:
    """Authenticates token requests against the registered clients.

    Args:
        clients: the registry, shared with (and mutated by) the server.
        clock: seconds since the epoch, injectable for tests.
    """

    def __init__(
        self, clients: Mapping[str, RegisteredClient], clock: Callable[[], float] = time.time
    ) -> None:
        self._clients = clients
        self._clock = clock
        self._seen_jtis: dict[tuple[str, str], float] = {}
        self.federated: dict[str, FederatedCredential] = {}
        self.rejections: dict[str, int] = {}

    def reject(self, reason: str) -> None:
        """Count a refused client assertion by reason (``expired``, ``signature``, ...)."""
        self.rejections[reason] = self.rejections.get(reason, 0) + 1

    def authenticate(self, request: ClientRequest, audiences: Collection[str]) -> RegisteredClient:
        """Return the authenticated client or raise an `OAuthProblem`.

        Args:
            request: the request parameters, Authorization header and TLS peer CN.
            audiences: the values a client assertion's ``aud`` may name (token URL, issuer).
        """
        methods = _presented_methods(request)
        if len(methods) > 1:
            # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
            raise invalid_request("more than one client authentication method in the request")
        if not methods:
            return self._without_credentials(request)
        if methods[0] == "client_secret_basic":
            return self._check_basic(request)
        if methods[0] == "client_secret_post":
            return self._check_post(request.params)
        return self._check_assertion(request.params, audiences)

    def _check_basic(self, request: ClientRequest) -> RegisteredClient:
        assert request.authorization is not None
        client_id, secret = _decode_basic(request.authorization)
        if request.params.get("client_id", client_id) != client_id:
            raise invalid_client("client_id does not match the Basic credentials")
        return self._check_secret(client_id, secret, "client_secret_basic")

    def _check_post(self, params: Mapping[str, str]) -> RegisteredClient:
        client_id = params.get("client_id")
        if client_id is None:
            raise invalid_request("client_secret without client_id")
        return self._check_secret(client_id, params["client_secret"], "client_secret_post")

    def _lookup(self, client_id: str, method: str) -> RegisteredClient:
        client = self._clients.get(client_id)
        if client is None:
            raise invalid_client("unknown client")
        if method not in client.auth_methods:
            raise invalid_client(f"client is not registered for {method}")
        return client

    def _check_secret(self, client_id: str, secret: str, method: str) -> RegisteredClient:
        client = self._lookup(client_id, method)
        expected = (client.client_secret or "").encode()
        if not hmac.compare_digest(secret.encode(), expected):
            raise invalid_client("client authentication failed")
        return client

    def _without_credentials(self, request: ClientRequest) -> RegisteredClient:
        client_id = request.params.get("client_id")
        if client_id is None:
            raise invalid_client("no client authentication")
        client = self._clients.get(client_id)
        if client is None:
            raise invalid_client("unknown client")
        if request.peer_cn is not None and "tls_client_auth" in client.auth_methods:
            # RFC 8705 §2.1.2: the certificate subject must match the registered one.
            expected = client.tls_client_cn or client.client_id
            if not hmac.compare_digest(request.peer_cn.encode(), expected.encode()):
                raise invalid_client("client certificate subject does not match")
            return client
        if "none" in client.auth_methods:
            return client
        raise invalid_client("client authentication required")

    def _check_assertion(
        self, params: Mapping[str, str], audiences: Collection[str]
    ) -> RegisteredClient:
        """Verify a ``client_assertion`` JWT (RFC 7523 §3, RFC 7521 §4.2)."""
        assertion = params.get("client_assertion")
        assertion_type = params.get("client_assertion_type")
        if not assertion or not assertion_type:
            raise invalid_request("client_assertion and client_assertion_type go together")
        federated = self.federated.get(params.get("client_id", ""))
        if federated is not None and assertion_type in (JWT_BEARER, JWT_SPIFFE):
            verify_federated(assertion, federated, tuple(audiences), self._clock(), self.reject)
            return self._lookup(params["client_id"], "private_key_jwt")
        if assertion_type != JWT_BEARER:
            raise invalid_client("unsupported client_assertion_type")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise invalid_client("malformed client assertion") from None
        client_id = claims.get("iss")
        if not isinstance(client_id, str) or claims.get("sub") != client_id:
            raise invalid_client("client assertion iss and sub must both be the client_id")
        if params.get("client_id", client_id) != client_id:
            raise invalid_client("client_id does not match the client assertion")
        alg = header.get("alg")
        method = "client_secret_jwt" if alg in HMAC_ALGS else "private_key_jwt"
        client = self._lookup(client_id, method)
        self._verify_signature(assertion, alg, client)
        self._check_assertion_claims(client_id, claims, audiences)
        return client

    def _verify_signature(self, assertion: str, alg: Any, client: RegisteredClient) -> None:
        # Verified by hand with pyjwt's algorithm objects: pyjwt's decode warns on short
        # HMAC secrets, and test clients are entitled to short secrets.
        if alg not in ASSERTION_ALGS:
            raise invalid_client(f"unsupported assertion alg {str(alg)[:10]!r}")
        key: Any = client.client_secret.encode() if alg in HMAC_ALGS else client.public_key  # type: ignore[union-attr]
        if not _key_fits(alg, key):
            raise invalid_client(f"the registered key cannot verify {alg}")
        signing_input, _, signature = assertion.rpartition(".")
        try:
            valid = _ALGORITHMS[alg].verify(
                signing_input.encode(), key, base64url_decode(signature.encode())
            )
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise invalid_client("client assertion signature is invalid")

    def _check_assertion_claims(
        self, client_id: str, claims: Mapping[str, Any], audiences: Collection[str]
    ) -> None:
        now = self._clock()
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(a in audiences for a in auds):
            raise invalid_client("client assertion aud must name the token endpoint or issuer")
        exp = claims.get("exp")
        if not _is_number(exp):
            raise invalid_client("client assertion has no exp")
        if exp + CLOCK_SKEW < now:
            self.reject("expired")
            raise invalid_client("client assertion has expired")
        if exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
            raise invalid_client("client assertion exp is too far in the future")
        nbf = claims.get("nbf")
        if _is_number(nbf) and nbf > now + CLOCK_SKEW:
            raise invalid_client("client assertion is not valid yet")
        self._check_jti(client_id, claims.get("jti"), float(exp), now)

    def _check_jti(self, client_id: str, jti: Any, exp: float, now: float) -> None:
        # RFC 7523 §3 item 7: the server may keep seen jti values to prevent replay.
        if not isinstance(jti, str) or not jti:
            raise invalid_client("client assertion has no jti")
        key = (client_id, jti)
        if key in self._seen_jtis:
            raise invalid_client("client assertion jti was already used")
        if len(self._seen_jtis) > 10_000:
            self._seen_jtis = {k: t for k, t in self._seen_jtis.items() if t >= now}
        self._seen_jtis[key] = exp + CLOCK_SKEW


def _key_fits(alg: str, key: object) -> bool:
    if alg in HMAC_ALGS:
        return isinstance(key, bytes)
    if alg in RSA_ALGS:
        return isinstance(key, rsa.RSAPublicKey)
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, EC_ALGS[alg])


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def decide_grant(
    client: RegisteredClient,
    params: Mapping[str, str],
    resources: Sequence[str],
    default_audience: str,
) -> Grant:
    """What ``client`` gets for this request, or an `OAuthProblem` saying why not.

    Scopes follow RFC 6749 §3.3 (space-delimited; none asked means the defaults),
    ``audience`` and ``resource`` (RFC 8707 §2) answer ``invalid_target``.
    """
    if not client.grant_allowed:
        raise OAuthProblem("unauthorized_client", "client may not use client_credentials")
    requested = params.get("scope", "").split() or list(client.default_scopes)
    if client.scopes is not None and (denied := set(requested) - client.scopes):
        raise OAuthProblem("invalid_scope", f"scope not allowed: {' '.join(sorted(denied))}")
    audience = params.get("audience")
    if audience is not None and client.audiences is not None and audience not in client.audiences:
        raise OAuthProblem("invalid_target", "audience not allowed")
    for resource in resources:
        _check_resource(client, resource)
    granted = tuple(dict.fromkeys(s for s in requested if s not in client.grant_fewer_scopes))
    target: str | list[str] = audience or (
        resources[0] if len(resources) == 1 else list(resources) or default_audience
    )
    return Grant(client.client_id, granted, target)


def _check_resource(client: RegisteredClient, resource: str) -> None:
    # RFC 8707 §2: an absolute URI without a fragment.
    parts = urlsplit(resource)
    if not parts.scheme or parts.fragment or "#" in resource:
        raise OAuthProblem("invalid_target", "resource must be an absolute URI without fragment")
    if client.resources is not None and resource not in client.resources:
        raise OAuthProblem("invalid_target", "resource not allowed")
