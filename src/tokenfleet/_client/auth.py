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
from jwt.warnings import InsecureKeyLengthWarning

from .._exceptions import ConfigurationError
from .._models import Secret
from .sources import AssertionSource, KeySource, SecretSource, SourceInfo, Unpicklable
from .tls import TlsClientCert

__all__ = [
    "ASSERTION_TYPE",
    "AuthMethod",
    "ClientAuth",
    "check_alg",
    "make_client_auth",
    "secret_text",
]

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
    """One client authentication method, applied to one token request.

    ``credential_id`` goes into the cache key. It names the *kind* of credential, not its
    value: a token fetched with secret v1 is as good as one fetched with v2 for the same
    client, so processes that read a rotated secret at different moments keep sharing
    one cached token. Only ``tls_client_auth`` keys by the certificate's fingerprint, as
    its tokens may be bound to the certificate (RFC 8705 §3).
    """

    method: str

    @property
    def credential_id(self) -> str: ...

    async def apply(self, form: Form, headers: dict[str, str], audience: str) -> tuple[str, ...]:
        """Add authentication to the request; return the sensitive values it used."""
        ...

    async def refresh(self) -> bool:
        """Read the credential again (after ``invalid_client``): is it worth a retry?"""
        ...

    def sources(self) -> tuple[SourceInfo, ...]:
        """Where each credential comes from, for ``tokenfleet check``."""
        ...


def secret_text(secret: Secret) -> str:
    """The secret as text; a typed error (without the secret) if its bytes are not UTF-8."""
    try:
        return secret.reveal_str()
    except UnicodeDecodeError:
        pass
    # Raised outside the except block: a UnicodeDecodeError carries the whole secret in
    # its ``object``, so it must not even be our error's ``__context__``.
    raise ConfigurationError(
        "client_secret is bytes that are not UTF-8 text; client_secret_basic and "
        "client_secret_post send it as text: pass the secret as the str the server gave"
    )


class _SecretBasic(Unpicklable):
    __slots__ = ("_client_id", "_source")
    method = "client_secret_basic"
    credential_id = "secret"

    def __init__(self, client_id: str, source: SecretSource) -> None:
        self._client_id = client_id
        self._source = source

    async def apply(self, form: Form, headers: dict[str, str], audience: str) -> tuple[str, ...]:
        secret = secret_text(await self._source.get())
        # §2.3.1: form-urlencode each part before joining with ":" and Base64-encoding.
        raw = f"{quote_plus(self._client_id, safe='')}:{quote_plus(secret, safe='')}"
        header = "Basic " + base64.b64encode(raw.encode()).decode("ascii")
        headers["Authorization"] = header
        return (secret, quote_plus(secret, safe=""), header, header[6:])

    async def refresh(self) -> bool:
        return await self._source.refresh()

    def sources(self) -> tuple[SourceInfo, ...]:
        return (self._source.info(),)


class _SecretPost(_SecretBasic):
    __slots__ = ()
    method = "client_secret_post"

    async def apply(self, form: Form, headers: dict[str, str], audience: str) -> tuple[str, ...]:
        secret = secret_text(await self._source.get())
        form += [("client_id", self._client_id), ("client_secret", secret)]
        return (secret, quote_plus(secret, safe=""))


def _assertion_claims(client_id: str, audience: str, now: int) -> dict[str, Any]:
    """A fresh RFC 7523 §3 assertion's claims: iss = sub = client_id, unique jti, short exp."""
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex + secrets.token_hex(4),
        "iat": now,
        "nbf": now,
        "exp": now + int(ASSERTION_LIFETIME),
    }


def _assertion_form(client_id: str, assertion_type: str, assertion: str) -> Form:
    return [
        ("client_id", client_id),
        ("client_assertion_type", assertion_type),
        ("client_assertion", assertion),
    ]


class _SecretJwt(Unpicklable):
    """``client_secret_jwt``: an assertion signed with HMAC, the secret as key."""

    __slots__ = ("_alg", "_client_id", "_clock", "_headers", "_source", "_warned")
    method = "client_secret_jwt"
    credential_id = "secret"

    def __init__(
        self,
        client_id: str,
        source: SecretSource,
        alg: str,
        key_id: str | None,
        clock: Callable[[], float],
    ) -> None:
        self._client_id = client_id
        self._source = source
        self._alg = alg
        self._headers = {"kid": key_id} if key_id else None
        self._clock = clock
        self._warned = False

    async def apply(self, form: Form, headers: dict[str, str], audience: str) -> tuple[str, ...]:
        key = (await self._source.get()).reveal_bytes()
        self._check_length(len(key))
        claims = _assertion_claims(self._client_id, audience, int(self._clock()))
        with warnings.catch_warnings():
            # A short HMAC secret is the server's choice; we warned once.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            assertion = jwt.encode(claims, key, algorithm=self._alg, headers=self._headers)
        form += _assertion_form(self._client_id, ASSERTION_TYPE, assertion)
        # An HMAC key is the client secret: scrub it from messages too.
        return (assertion, key.decode("utf-8", "replace"))

    def _check_length(self, size: int) -> None:
        if self._warned or size >= _HMAC_MIN_BYTES[self._alg]:
            return
        self._warned = True
        logger.warning(
            "tokenfleet: client %s signs client_secret_jwt (%s) with a secret shorter than "
            "%d bytes, below RFC 7518 §3.2's minimum; ask for a longer secret",
            self._client_id,
            self._alg,
            _HMAC_MIN_BYTES[self._alg],
        )

    async def refresh(self) -> bool:
        return await self._source.refresh()

    def sources(self) -> tuple[SourceInfo, ...]:
        return (self._source.info(),)


class _PrivateKeyJwt(Unpicklable):
    """``private_key_jwt``: an assertion signed with the client's private key."""

    __slots__ = ("_alg", "_client_id", "_clock", "_headers", "_source")
    method = "private_key_jwt"
    credential_id = "key"

    def __init__(
        self,
        client_id: str,
        source: KeySource,
        alg: str | None,
        key_id: str | None,
        clock: Callable[[], float],
        x5t_s256: str | None = None,
    ) -> None:
        self._client_id = client_id
        self._source = source
        self._alg = alg
        headers = {"kid": key_id} if key_id else {}
        if x5t_s256:
            headers["x5t#S256"] = x5t_s256  # RFC 7515 §4.1.8: the signer's certificate
        self._headers = headers or None
        self._clock = clock

    async def apply(self, form: Form, headers: dict[str, str], audience: str) -> tuple[str, ...]:
        loaded = await self._source.get()
        alg = check_alg(loaded.key, self._alg)  # a rotated key may be of another type
        claims = _assertion_claims(self._client_id, audience, int(self._clock()))
        assertion = jwt.encode(claims, loaded.key, algorithm=alg, headers=self._headers)
        form += _assertion_form(self._client_id, ASSERTION_TYPE, assertion)
        return (assertion,)

    async def refresh(self) -> bool:
        return await self._source.refresh()

    def sources(self) -> tuple[SourceInfo, ...]:
        return (self._source.info(),)


class _ReadyAssertion(Unpicklable):
    """A client assertion minted by someone else (RFC 7521 §4.2): a federated credential."""

    __slots__ = ("_client_id", "_source")
    method = "private_key_jwt"
    credential_id = "assertion"

    def __init__(self, client_id: str, source: AssertionSource) -> None:
        self._client_id = client_id
        self._source = source

    async def apply(self, form: Form, headers: dict[str, str], audience: str) -> tuple[str, ...]:
        current = await self._source.get()
        assertion = current.value.reveal_str()
        form += _assertion_form(self._client_id, current.assertion_type, assertion)
        return (assertion,)

    async def refresh(self) -> bool:
        return await self._source.refresh()

    def sources(self) -> tuple[SourceInfo, ...]:
        return (self._source.info(),)


class _ClientIdOnly(Unpicklable):
    """``tls_client_auth`` and ``none``: the body names the client, nothing else."""

    __slots__ = ("_client_id", "_tls", "method")

    def __init__(self, method: str, client_id: str, tls: TlsClientCert | None) -> None:
        self.method = method
        self._client_id = client_id
        self._tls = tls

    @property
    def credential_id(self) -> str:
        if self.method == "none":
            return "public"
        # RFC 8705 §3: tokens may be bound to the certificate; key by its fingerprint.
        return f"tls:{self._tls.fingerprint}" if self._tls else "tls:context"

    async def apply(self, form: Form, headers: dict[str, str], audience: str) -> tuple[str, ...]:
        form.append(("client_id", self._client_id))
        return ()

    async def refresh(self) -> bool:
        return False  # the certificate is re-read before every request anyway

    def sources(self) -> tuple[SourceInfo, ...]:
        return (self._tls.info(),) if self._tls else ()


def make_client_auth(
    method: str,
    *,
    client_id: str,
    client_secret: SecretSource | None,
    private_key: KeySource | None,
    client_assertion: AssertionSource | None,
    tls: TlsClientCert | None,
    signing_alg: str | None,
    key_id: str | None,
    clock: Callable[[], float] = time.time,
    x5t_s256: str | None = None,
) -> ClientAuth:
    """Validate the settings for ``method`` and build it.

    Raises:
        ConfigurationError: the method is unknown or its credential is missing or unusable.
    """
    if method not in AUTH_METHODS:
        raise ConfigurationError(
            f"unknown auth_method {method!r}; choose one of: {', '.join(AUTH_METHODS)}"
        )
    if client_assertion is not None:
        if method != "private_key_jwt":
            raise ConfigurationError(
                f"client_assertion authenticates as private_key_jwt, not {method!r}: leave "
                "auth_method out or set it to 'private_key_jwt'"
            )
        return _ReadyAssertion(client_id, client_assertion)
    if method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
        if client_secret is None:
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
        return _SecretJwt(client_id, client_secret, alg, key_id, clock)
    if method == "private_key_jwt":
        if private_key is None:
            raise ConfigurationError(
                "auth_method 'private_key_jwt' needs private_key (PEM or tokenfleet.KeyFile) "
                "or client_assertion (tokenfleet.AssertionFile)"
            )
        return _PrivateKeyJwt(client_id, private_key, signing_alg, key_id, clock, x5t_s256)
    if method == "tls_client_auth":
        return _ClientIdOnly(method, client_id, tls)
    return _ClientIdOnly(method, client_id, None)


def check_alg(key: Any, alg: str | None) -> str:
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
