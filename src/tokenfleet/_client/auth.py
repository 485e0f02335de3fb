"""Client authentication at the token endpoint.

Each method adds what it needs to the form and the headers of one request, and names the
sensitive values it used so that error messages can be scrubbed of them:

* ``client_secret_basic`` — RFC 6749 §2.3.1: id and secret form-urlencoded, *then* Base64;
* ``client_secret_post`` — RFC 6749 §2.3.1, in the body;
* ``client_secret_jwt`` / ``private_key_jwt`` — RFC 7523 §2.2 and §3, OIDC Core §9:
  a fresh signed assertion for every request;
* ``tls_client_auth`` — RFC 8705 §2: the TLS client certificate authenticates, the body
  carries ``client_id``;
* ``none`` — a public client: ``client_id`` only.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any, Literal, Protocol, get_args
from urllib.parse import quote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.warnings import InsecureKeyLengthWarning

from .._exceptions import ConfigurationError
from .._models import Secret

__all__ = ["ASSERTION_TYPE", "AuthMethod", "ClientAuth", "make_client_auth"]

AuthMethod = Literal[
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "none",
]
AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60.0  # seconds; RFC 7523 §3 wants a short exp, we stay well under 5 min

_HMAC_ALGS = ("HS256", "HS384", "HS512")
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}

Form = list[tuple[str, str]]
logger = logging.getLogger("tokenfleet")


class ClientAuth(Protocol):
    """One client authentication method, applied to one token request."""

    method: str
    credential_fingerprint: str

    def apply(self, form: Form, headers: dict[str, str]) -> tuple[str, ...]:
        """Add authentication to the request; return the sensitive values it used."""
        ...


class _SecretBasic:
    method = "client_secret_basic"

    def __init__(self, client_id: str, secret: Secret) -> None:
        # §2.3.1: form-urlencode each part before joining with ":" and Base64-encoding.
        raw = f"{quote_plus(client_id, safe='')}:{quote_plus(secret.reveal_str(), safe='')}"
        self._header = "Basic " + base64.b64encode(raw.encode()).decode("ascii")
        self._secret = secret
        self.credential_fingerprint = secret.fingerprint

    def apply(self, form: Form, headers: dict[str, str]) -> tuple[str, ...]:
        headers["Authorization"] = self._header
        secret = self._secret.reveal_str()
        return (secret, quote_plus(secret, safe=""), self._header, self._header[6:])


class _SecretPost:
    method = "client_secret_post"

    def __init__(self, client_id: str, secret: Secret) -> None:
        self._client_id = client_id
        self._secret = secret
        self.credential_fingerprint = secret.fingerprint

    def apply(self, form: Form, headers: dict[str, str]) -> tuple[str, ...]:
        secret = self._secret.reveal_str()
        form += [("client_id", self._client_id), ("client_secret", secret)]
        return (secret, quote_plus(secret, safe=""))


class _JwtAssertion:
    """``client_secret_jwt`` (HMAC with the secret) or ``private_key_jwt`` (a private key)."""

    def __init__(
        self,
        method: str,
        client_id: str,
        key: Any,
        alg: str,
        audience: str,
        key_id: str | None,
        credential_fingerprint: str,
        clock: Callable[[], float],
    ) -> None:
        self.method = method
        self.credential_fingerprint = credential_fingerprint
        self._client_id = client_id
        self._key = key
        self._alg = alg
        self._audience = audience
        self._headers = {"kid": key_id} if key_id else None
        self._clock = clock
        # An HMAC key is the client secret: scrub it from messages too.
        self._scrub = (key.decode("utf-8", "replace"),) if isinstance(key, bytes) else ()

    def assertion(self) -> str:
        """A fresh RFC 7523 §3 assertion: iss = sub = client_id, unique jti, short exp."""
        now = int(self._clock())
        claims = {
            "iss": self._client_id,
            "sub": self._client_id,
            "aud": self._audience,
            "jti": uuid.uuid4().hex + secrets.token_hex(4),
            "iat": now,
            "nbf": now,
            "exp": now + int(ASSERTION_LIFETIME),
        }
        with warnings.catch_warnings():
            # A short HMAC secret is the server's choice; we warned once at construction.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(claims, self._key, algorithm=self._alg, headers=self._headers)

    def apply(self, form: Form, headers: dict[str, str]) -> tuple[str, ...]:
        assertion = self.assertion()
        form += [
            ("client_id", self._client_id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ]
        return (assertion, *self._scrub)


class _ClientIdOnly:
    """``tls_client_auth`` and ``none``: the body names the client, nothing else."""

    def __init__(self, method: str, client_id: str, credential_fingerprint: str) -> None:
        self.method = method
        self.credential_fingerprint = credential_fingerprint
        self._client_id = client_id

    def apply(self, form: Form, headers: dict[str, str]) -> tuple[str, ...]:
        form.append(("client_id", self._client_id))
        return ()


def make_client_auth(
    method: str,
    *,
    client_id: str,
    client_secret: Secret | None,
    private_key: Secret | None,
    signing_alg: str | None,
    key_id: str | None,
    assertion_audience: str,
    tls_fingerprint: str,
    clock: Callable[[], float] = time.time,
) -> ClientAuth:
    """Validate the settings for ``method`` and build it.

    Raises:
        ConfigurationError: the method is unknown or its credential is missing or unusable.
    """
    if method not in AUTH_METHODS:
        raise ConfigurationError(
            f"unknown auth_method {method!r}; choose one of: {', '.join(AUTH_METHODS)}"
        )
    if method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
        if not client_secret:
            raise ConfigurationError(f"auth_method {method!r} needs client_secret")
        if method == "client_secret_basic":
            return _SecretBasic(client_id, client_secret)
        if method == "client_secret_post":
            return _SecretPost(client_id, client_secret)
        alg = signing_alg or "HS256"
        if alg not in _HMAC_ALGS:
            raise ConfigurationError(
                f"client_secret_jwt signs with HMAC; signing_alg must be one of {_HMAC_ALGS}"
            )
        if len(client_secret.reveal_bytes()) < _HMAC_MIN_BYTES[alg]:
            logger.warning(
                "tokenfleet: client %s signs client_secret_jwt (%s) with a secret shorter than "
                "%d bytes, below RFC 7518 §3.2's minimum; ask for a longer secret",
                client_id,
                alg,
                _HMAC_MIN_BYTES[alg],
            )
        return _JwtAssertion(
            method,
            client_id,
            client_secret.reveal_bytes(),
            alg,
            assertion_audience,
            key_id,
            client_secret.fingerprint,
            clock,
        )
    if method == "private_key_jwt":
        if not private_key:
            raise ConfigurationError("auth_method 'private_key_jwt' needs private_key (PEM)")
        key = _load_private_key(private_key)
        alg = _check_alg(key, signing_alg)
        return _JwtAssertion(
            method,
            client_id,
            key,
            alg,
            assertion_audience,
            key_id,
            private_key.fingerprint,
            clock,
        )
    if method == "tls_client_auth":
        return _ClientIdOnly(method, client_id, tls_fingerprint)
    return _ClientIdOnly(method, client_id, "public")


def _load_private_key(pem: Secret) -> Any:
    try:
        return load_pem_private_key(pem.reveal_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        # The parser's message does not contain key material, but stay conservative.
        raise ConfigurationError(
            "private_key is not an unencrypted PEM private key (PKCS#8 or traditional); "
            f"the parser said: {type(exc).__name__}"
        ) from None


def _check_alg(key: Any, alg: str | None) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        allowed: tuple[str, ...] = _RSA_ALGS
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        allowed = (_EC_ALGS.get(key.curve.name, "unsupported curve"),)
    elif isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        allowed = ("EdDSA",)
    else:
        raise ConfigurationError(
            f"private_key of type {type(key).__name__} is not supported: use RSA, EC or EdDSA"
        )
    chosen = alg or allowed[0]
    if chosen not in allowed:
        raise ConfigurationError(
            f"signing_alg {chosen!r} does not fit this private key; use one of {allowed}"
        )
    return chosen
