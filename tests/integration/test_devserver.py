"""The dev authorization server, tested over loopback with plain aiohttp.

These tests deliberately avoid tokenfleet's own client: the server is what the client is
tested against, so it is checked here on its own, request by request.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfleet.testing import DevAuthServer, Fault, TestPKI, make_test_pki

CC = {"grant_type": "client_credentials"}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SPECIAL_SECRET = "a:b%c+d e/é"


# -- helpers -------------------------------------------------------------------------------


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An Authorization header encoded as RFC 6749 §2.3.1 says."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def assertion(
    client_id: str,
    key: Any,
    aud: str | list[str],
    *,
    alg: str = "HS256",
    exp_in: float = 60.0,
    jti: str | None = "fresh",
    sub: str | None = None,
) -> dict[str, str]:
    """Form fields of a client_secret_jwt / private_key_jwt client assertion."""
    now = time.time()
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": sub or client_id,
        "aud": aud,
        "iat": int(now),
        "exp": int(now + exp_in),
    }
    if jti is not None:
        claims["jti"] = secrets.token_hex(8) if jti == "fresh" else jti
    token = jwt.encode(claims, key, algorithm=alg)
    return {"client_assertion_type": JWT_BEARER, "client_assertion": token}


async def post_token(
    http: aiohttp.ClientSession,
    url: str,
    data: Mapping[str, str] | str | bytes | list[tuple[str, str]] = CC,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    """POST to the token endpoint; the status, the JSON body and the response."""
    if not isinstance(data, str | bytes):
        data = urlencode(list(data.items()) if isinstance(data, Mapping) else data)
    all_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    async with http.post(url, data=data, headers=all_headers, **kwargs) as response:
        return response.status, await response.json(content_type=None), response


async def get_token(
    http: aiohttp.ClientSession, idp: DevAuthServer, **fields: str
) -> dict[str, Any]:
    """A successful token response for the default client."""
    status, body, _ = await post_token(
        http, idp.token_url, {**CC, **fields}, basic(idp.client_id, idp.client_secret)
    )
    assert status == 200, body
    return body


async def call_resource(
    http: aiohttp.ClientSession, idp: DevAuthServer, token: str, scheme: str = "Bearer"
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    headers = {"Authorization": f"{scheme} {token}"}
    async with http.get(idp.resource_url, headers=headers) as response:
        return response.status, await response.json(), response


def sync_post(url: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """POST a client_credentials request with urllib, without any event loop."""
    data = urlencode(CC).encode()
    request = urllib.request.Request(url, data=data, headers=dict(headers))  # noqa: S310
    with urllib.request.urlopen(request) as response:  # noqa: S310 - loopback test server
        body: dict[str, Any] = json.load(response)
    return body


def verify_access_token(idp: DevAuthServer, token: str) -> dict[str, Any]:
    """Verify ``token`` against the published JWKS, as a resource server would."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in idp.public_jwks["keys"] if k["kid"] == kid)
    key = jwt.PyJWK(jwk).key
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], issuer=idp.issuer, options={"verify_aud": False}
    )
    return claims


def assert_oauth_error(status: int, body: dict[str, Any], error: str, expected: int = 400) -> None:
    assert status == expected, body
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- success and the token format ---------------------------------------------------------------


async def test_basic_auth_issues_rfc9068_jwt(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    status, body, response = await post_token(
        http,
        idp.token_url,
        {**CC, "scope": "orders:read orders:write"},
        basic(idp.client_id, idp.client_secret),
    )
    assert status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "orders:read orders:write"
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"] == idp.signing_key_id
    claims = verify_access_token(idp, body["access_token"])
    assert claims["sub"] == claims["client_id"] == idp.client_id
    assert claims["aud"] == idp.resource_url
    assert claims["scope"] == "orders:read orders:write"
    assert claims["nbf"] == claims["iat"]
    assert 3600 <= claims["exp"] - claims["iat"] <= 3601
    assert claims["jti"]


async def test_addresses(idp: DevAuthServer) -> None:
    assert idp.url.startswith("http://127.0.0.1:")
    assert idp.issuer == idp.url
    assert idp.token_url == idp.url + "/token"
    assert idp.jwks_url == idp.url + "/jwks"
    assert idp.resource_url == idp.url + "/resource"
    assert idp.client_id == "dev-client"
    assert len(idp.client_secret) >= 32


def test_url_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = DevAuthServer().url


# -- client_secret_basic and client_secret_post -------------------------------------------------


async def test_basic_decodes_per_rfc6749_2_3_1(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    idp.register_client("svc:orders é", SPECIAL_SECRET)
    status, body, _ = await post_token(
        http, idp.token_url, CC, basic("svc:orders é", SPECIAL_SECRET)
    )
    assert status == 200, body
    assert verify_access_token(idp, body["access_token"])["sub"] == "svc:orders é"


async def test_basic_without_form_encoding_fails(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    # Sent raw, '+' decodes to ' ' and '%c+' is not what was registered: authentication fails.
    idp.register_client("svc", SPECIAL_SECRET)
    raw = base64.b64encode(f"svc:{SPECIAL_SECRET}".encode()).decode()
    status, body, _ = await post_token(http, idp.token_url, CC, {"Authorization": f"Basic {raw}"})
    assert_oauth_error(status, body, "invalid_client", 401)


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("dev-client", "wrong"), ("nobody", "x"), ("dev-client", "")],
)
async def test_basic_wrong_credentials(
    idp: DevAuthServer, http: aiohttp.ClientSession, client_id: str, secret: str
) -> None:
    status, body, response = await post_token(http, idp.token_url, CC, basic(client_id, secret))
    assert_oauth_error(status, body, "invalid_client", 401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="tokenfleet-dev"'
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "value", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer abc"]
)
async def test_malformed_authorization_header(
    idp: DevAuthServer, http: aiohttp.ClientSession, value: str
) -> None:
    status, body, _ = await post_token(http, idp.token_url, CC, {"Authorization": value})
    assert_oauth_error(status, body, "invalid_client", 401)


async def test_client_secret_post(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    form = {**CC, "client_id": idp.client_id, "client_secret": idp.client_secret}
    status, body, _ = await post_token(http, idp.token_url, form)
    assert status == 200, body
    status, body, _ = await post_token(http, idp.token_url, {**form, "client_secret": "nope"})
    assert_oauth_error(status, body, "invalid_client", 401)


async def test_two_auth_methods_at_once_is_invalid_request(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    form = {**CC, "client_id": idp.client_id, "client_secret": idp.client_secret}
    status, body, _ = await post_token(
        http, idp.token_url, form, basic(idp.client_id, idp.client_secret)
    )
    assert_oauth_error(status, body, "invalid_request")


async def test_method_the_client_is_not_registered_for(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    idp.register_client("post-only", "s3cret", auth_methods=["client_secret_post"])
    status, body, _ = await post_token(http, idp.token_url, CC, basic("post-only", "s3cret"))
    assert_oauth_error(status, body, "invalid_client", 401)
    assert "client_secret_basic" in body["error_description"]


async def test_basic_client_id_in_body_must_match(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    headers = basic(idp.client_id, idp.client_secret)
    status, _, _ = await post_token(
        http, idp.token_url, {**CC, "client_id": idp.client_id}, headers
    )
    assert status == 200
    status, body, _ = await post_token(http, idp.token_url, {**CC, "client_id": "other"}, headers)
    assert_oauth_error(status, body, "invalid_client", 401)


async def test_no_client_authentication(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post_token(http, idp.token_url, CC)
    assert_oauth_error(status, body, "invalid_client", 401)


@settings(max_examples=40)
@given(
    client_id=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1),
    secret=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1),
)
def test_basic_round_trips_any_text(client_id: str, secret: str) -> None:
    with DevAuthServer().run_in_thread() as idp:
        idp.register_client(client_id, secret)
        assert sync_post(idp.token_url, basic(client_id, secret))["access_token"]


# -- client_secret_jwt and private_key_jwt --------------------------------------------------------


async def test_client_secret_jwt(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    form = {**CC, **assertion(idp.client_id, idp.client_secret, idp.token_url)}
    status, body, _ = await post_token(http, idp.token_url, form)
    assert status == 200, body
    assert verify_access_token(idp, body["access_token"])["sub"] == idp.client_id


@pytest.mark.parametrize("aud", ["issuer", "list"])
async def test_assertion_audience_may_be_issuer_or_list(
    idp: DevAuthServer, http: aiohttp.ClientSession, aud: str
) -> None:
    audience: str | list[str] = idp.issuer if aud == "issuer" else ["x", idp.token_url]
    form = {**CC, **assertion(idp.client_id, idp.client_secret, audience)}
    status, body, _ = await post_token(http, idp.token_url, form)
    assert status == 200, body


async def test_assertion_replay_is_rejected(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    form = {**CC, **assertion(idp.client_id, idp.client_secret, idp.token_url, jti="once")}
    assert (await post_token(http, idp.token_url, form))[0] == 200
    status, body, _ = await post_token(http, idp.token_url, form)
    assert_oauth_error(status, body, "invalid_client", 401)
    assert "jti" in body["error_description"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aud": "https://elsewhere.example/token"}, "aud"),
        ({"exp_in": -120.0}, "expired"),
        ({"exp_in": 3600.0}, "future"),
        ({"jti": None}, "jti"),
        ({"sub": "someone-else"}, "sub"),
        ({"key": "wrong-secret-that-is-long-enough-for-hs256"}, "signature"),
        ({"alg": "HS512"}, None),
    ],
)
async def test_bad_client_secret_jwt(
    idp: DevAuthServer, http: aiohttp.ClientSession, change: dict[str, Any], message: str | None
) -> None:
    args: dict[str, Any] = {"key": idp.client_secret, "aud": idp.token_url, **change}
    key, aud = args.pop("key"), args.pop("aud")
    form = {**CC, **assertion(idp.client_id, key, aud, **args)}
    status, body, _ = await post_token(http, idp.token_url, form)
    if message is None:  # HS512 is a valid alternative
        assert status == 200, body
        return
    assert_oauth_error(status, body, "invalid_client", 401)
    assert message in body["error_description"]


async def test_assertion_form_problems(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    fields = assertion(idp.client_id, idp.client_secret, idp.token_url)
    cases: list[tuple[dict[str, str], str, int]] = [
        ({**fields, "client_assertion_type": "urn:other"}, "invalid_client", 401),
        ({"client_assertion": fields["client_assertion"]}, "invalid_request", 400),
        ({**fields, "client_assertion": "not.a.jwt"}, "invalid_client", 401),
        ({**fields, "client_id": "someone-else"}, "invalid_client", 401),
    ]
    for form, error, expected in cases:
        status, body, _ = await post_token(http, idp.token_url, {**CC, **form})
        assert_oauth_error(status, body, error, expected)


def _private_key(alg: str) -> Any:
    if alg.startswith("ES"):
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
async def test_private_key_jwt(idp: DevAuthServer, http: aiohttp.ClientSession, alg: str) -> None:
    key = _private_key(alg)
    idp.register_client("pk", public_key=_public_pem(key), auth_methods=["private_key_jwt"])
    form = {**CC, **assertion("pk", key, idp.token_url, alg=alg)}
    status, body, _ = await post_token(http, idp.token_url, form)
    assert status == 200, body
    other = _private_key(alg)
    form = {**CC, **assertion("pk", other, idp.token_url, alg=alg)}
    status, body, _ = await post_token(http, idp.token_url, form)
    assert_oauth_error(status, body, "invalid_client", 401)


async def test_private_key_jwt_rejects_other_methods(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    key = _private_key("ES256")
    idp.register_client("pk", public_key=_public_pem(key), auth_methods=["private_key_jwt"])
    hs = {**CC, **assertion("pk", "x" * 40, idp.token_url)}
    status, body, _ = await post_token(http, idp.token_url, hs)
    assert_oauth_error(status, body, "invalid_client", 401)
    rs = {**CC, **assertion("pk", _private_key("RS256"), idp.token_url, alg="RS256")}
    status, body, _ = await post_token(http, idp.token_url, rs)
    assert_oauth_error(status, body, "invalid_client", 401)


# -- none and tls_client_auth -----------------------------------------------------------------


async def test_public_client(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.register_client("public", auth_methods=["none"])
    status, body, _ = await post_token(http, idp.token_url, {**CC, "client_id": "public"})
    assert status == 200, body
    status, body, _ = await post_token(http, idp.token_url, {**CC, "client_id": idp.client_id})
    assert_oauth_error(status, body, "invalid_client", 401)


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return make_test_pki(tmp_path, client_cn="svc-mtls")


async def test_tls_client_auth(pki: TestPKI, http: aiohttp.ClientSession) -> None:
    async with DevAuthServer(ssl_context=pki.server_ssl_context) as idp:
        assert idp.url.startswith("https://127.0.0.1:")
        idp.register_client("svc-mtls", auth_methods=["tls_client_auth"])
        idp.register_client("other", auth_methods=["tls_client_auth"], tls_client_cn="CN-other")
        idp.register_client("pinned", auth_methods=["tls_client_auth"], tls_client_cn="svc-mtls")
        ssl = pki.client_ssl_context
        for client_id, expected in [("svc-mtls", 200), ("other", 401), ("pinned", 200)]:
            form = {**CC, "client_id": client_id}
            status, body, _ = await post_token(http, idp.token_url, form, ssl=ssl)
            assert status == expected, (client_id, body)
        headers = basic(idp.client_id, idp.client_secret)
        status, _, _ = await post_token(http, idp.token_url, CC, headers, ssl=ssl)
        assert status == 200
        assert "tls_client_auth" in idp.metadata()["token_endpoint_auth_methods_supported"]


async def test_tls_without_client_certificate(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    pki = make_test_pki(tmp_path, require_client_cert=False)
    async with DevAuthServer(ssl_context=pki.server_ssl_context) as idp:
        idp.register_client("mtls", auth_methods=["tls_client_auth"])
        ssl = pki.client_context(with_certificate=False)
        status, body, _ = await post_token(
            http, idp.token_url, {**CC, "client_id": "mtls"}, ssl=ssl
        )
        assert_oauth_error(status, body, "invalid_client", 401)
        assert pki.client_cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


async def test_tls_client_auth_needs_tls(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.register_client("mtls", auth_methods=["tls_client_auth"])
    status, body, _ = await post_token(http, idp.token_url, {**CC, "client_id": "mtls"})
    assert_oauth_error(status, body, "invalid_client", 401)
    assert "tls_client_auth" not in idp.metadata()["token_endpoint_auth_methods_supported"]


# -- request errors, scopes and targets -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ("grant_type=client_credentials", "application/json", "invalid_request"),
        (b"grant_type=\xff\xfe", "application/x-www-form-urlencoded", "invalid_request"),
        (
            "grant_type=client_credentials&&x",
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
        ("scope=a", "application/x-www-form-urlencoded", "invalid_request"),
        ("grant_type=password", "application/x-www-form-urlencoded", "unsupported_grant_type"),
        (
            "grant_type=client_credentials&scope=a&scope=b",
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
    ],
)
async def test_request_errors(
    idp: DevAuthServer,
    http: aiohttp.ClientSession,
    body: str | bytes,
    content_type: str,
    error: str,
) -> None:
    headers = {**basic(idp.client_id, idp.client_secret), "Content-Type": content_type}
    status, answer, response = await post_token(http, idp.token_url, body, headers)
    assert_oauth_error(status, answer, error)
    assert response.headers["Cache-Control"] == "no-store"


async def test_scopes(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.register_client(
        "svc",
        "secret",
        scopes=["read", "write", "admin"],
        default_scopes=["read"],
        grant_fewer_scopes=["admin"],
    )
    headers = basic("svc", "secret")
    status, body, _ = await post_token(http, idp.token_url, CC, headers)
    assert (status, body["scope"]) == (200, "read")
    status, body, _ = await post_token(
        http, idp.token_url, {**CC, "scope": "write admin"}, headers
    )
    assert (status, body["scope"]) == (200, "write")
    assert verify_access_token(idp, body["access_token"])["scope"] == "write"
    status, body, _ = await post_token(
        http, idp.token_url, {**CC, "scope": "read delete"}, headers
    )
    assert_oauth_error(status, body, "invalid_scope")
    assert idp.metadata()["scopes_supported"] == ["admin", "read", "write"]


async def test_targets(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.register_client(
        "svc",
        "secret",
        audiences=["api://orders"],
        resources=["https://a.example/", "https://b.example/"],
    )
    headers = basic("svc", "secret")
    _, body, _ = await post_token(http, idp.token_url, {**CC, "audience": "api://orders"}, headers)
    assert verify_access_token(idp, body["access_token"])["aud"] == "api://orders"
    two = [*CC.items(), ("resource", "https://a.example/"), ("resource", "https://b.example/")]
    _, body, _ = await post_token(http, idp.token_url, two, headers)
    assert verify_access_token(idp, body["access_token"])["aud"] == [
        "https://a.example/",
        "https://b.example/",
    ]
    for bad in [
        {"audience": "api://other"},
        {"resource": "https://c.example/"},
        {"resource": "relative/path"},
    ]:
        status, body, _ = await post_token(http, idp.token_url, {**CC, **bad}, headers)
        assert_oauth_error(status, body, "invalid_target")


async def test_unauthorized_client(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.register_client("svc", "secret", grant_allowed=False)
    status, body, _ = await post_token(http, idp.token_url, CC, basic("svc", "secret"))
    assert_oauth_error(status, body, "unauthorized_client")


def test_register_client_validation() -> None:
    idp = DevAuthServer()
    with pytest.raises(ValueError, match="unknown auth methods"):
        idp.register_client("x", "s", auth_methods=["magic"])
    with pytest.raises(ValueError, match="client_secret"):
        idp.register_client("x", auth_methods=["client_secret_basic"])
    with pytest.raises(ValueError, match="public_key"):
        idp.register_client("x", auth_methods=["private_key_jwt"])


# -- knobs ------------------------------------------------------------------------------------


async def test_response_knobs(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.token_lifetime = 2.5
    body = await get_token(http, idp)
    assert body["expires_in"] == 2.5
    claims = verify_access_token(idp, body["access_token"])
    assert isinstance(claims["exp"], int)
    assert 2.4 < claims["exp"] - time.time() <= 3.5
    idp.include_expires_in = False
    idp.include_scope = False
    idp.token_type = "DPoP"
    body = await get_token(http, idp, scope="a")
    assert set(body) == {"access_token", "token_type"}
    assert body["token_type"] == "DPoP"
    assert (await call_resource(http, idp, body["access_token"], scheme="DPoP"))[0] == 200


async def test_opaque_tokens(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.opaque_tokens = True
    token = (await get_token(http, idp, scope="x y"))["access_token"]
    assert token.count(".") == 0
    status, body, _ = await call_resource(http, idp, token)
    assert (status, body) == (200, {"ok": True, "sub": idp.client_id, "scope": "x y"})
    idp.revoke(token)
    assert (await call_resource(http, idp, token))[0] == 401


async def test_latency(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.latency = 0.2
    started = time.monotonic()
    await get_token(http, idp)
    assert time.monotonic() - started >= 0.2


# -- faults -----------------------------------------------------------------------------------


async def test_fault_count_and_retry_after(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    idp.inject_fault(Fault(status=503, retry_after=2), count=2)
    headers = basic(idp.client_id, idp.client_secret)
    for _ in range(2):
        status, body, response = await post_token(http, idp.token_url, CC, headers)
        assert status == 503
        assert body["error"] == "temporarily_unavailable"
        assert response.headers["Retry-After"] == "2"
    assert (await post_token(http, idp.token_url, CC, headers))[0] == 200
    assert idp.token_requests() == 3
    assert idp.issued_tokens() == 1
    assert [r.status for r in idp.requests_log] == [503, 503, 200]


async def test_fault_shapes(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    headers = basic(idp.client_id, idp.client_secret)
    idp.inject_fault(Fault(status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"), count=1)
    status, body, response = await post_token(http, idp.token_url, CC, headers)
    assert (status, body["error"]) == (429, "slow_down")
    assert response.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    custom = Fault(
        status=502,
        body="<html>bad gateway</html>",
        content_type="text/html",
        headers={"X-Fault": "1"},
    )
    idp.inject_fault(custom, count=1)
    async with http.post(idp.token_url, data=CC, headers=headers) as response:
        assert response.status == 502
        assert response.content_type == "text/html"
        assert response.headers["X-Fault"] == "1"
        assert await response.text() == "<html>bad gateway</html>"
    idp.inject_fault(Fault(status=400), count=1)
    assert (await post_token(http, idp.token_url, CC, headers))[1]["error"] == "invalid_request"


async def test_fault_until_cleared(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.inject_fault(Fault(status=500))
    headers = basic(idp.client_id, idp.client_secret)
    for _ in range(3):
        status, body, _ = await post_token(http, idp.token_url, CC, headers)
        assert (status, body["error"]) == (500, "server_error")
    idp.clear_faults()
    assert (await post_token(http, idp.token_url, CC, headers))[0] == 200


async def test_fault_ratio(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    headers = basic(idp.client_id, idp.client_secret)
    idp.inject_fault(Fault(status=503), ratio=0.5)
    statuses = [(await post_token(http, idp.token_url, CC, headers))[0] for _ in range(200)]
    assert 40 < statuses.count(503) < 160
    assert statuses.count(503) + statuses.count(200) == 200
    idp.clear_faults()
    idp.inject_fault(Fault(status=503), ratio=0.0)
    assert (await post_token(http, idp.token_url, CC, headers))[0] == 200


async def test_fault_validation(idp: DevAuthServer) -> None:
    with pytest.raises(ValueError, match="count"):
        idp.inject_fault(Fault(), count=0)
    with pytest.raises(ValueError, match="ratio"):
        idp.inject_fault(Fault(), ratio=1.5)


async def test_drop_connection(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.inject_fault(Fault(drop_connection=True), count=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await get_token(http, idp)
    await get_token(http, idp)
    assert [r.status for r in idp.requests_log] == [0, 200]


async def test_slow_body(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.inject_fault(Fault(slow_body=0.5), count=1)
    started = time.monotonic()
    body = await get_token(http, idp)
    assert time.monotonic() - started >= 0.45
    assert verify_access_token(idp, body["access_token"])
    timeout = aiohttp.ClientTimeout(total=0.3)
    idp.inject_fault(Fault(slow_body=2.0), count=1)
    with pytest.raises(asyncio.TimeoutError):
        await post_token(
            http, idp.token_url, CC, basic(idp.client_id, idp.client_secret), timeout=timeout
        )


async def test_malformed_json(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.inject_fault(Fault(malformed_json=True), count=1)
    async with http.post(
        idp.token_url, data=CC, headers=basic(idp.client_id, idp.client_secret)
    ) as r:
        assert r.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await r.text())
    assert idp.issued_tokens() == 0


async def test_delay_causes_client_timeout(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    idp.inject_fault(Fault(delay=0.5, status=503), count=1)
    with pytest.raises(asyncio.TimeoutError):
        await post_token(
            http,
            idp.token_url,
            CC,
            basic(idp.client_id, idp.client_secret),
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    assert idp.token_requests() == 1


# -- counters and /stats -------------------------------------------------------------------------


async def test_counters_and_stats(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.register_client("svc", "secret")
    token = (await get_token(http, idp))["access_token"]
    await post_token(http, idp.token_url, CC, basic("svc", "wrong"))
    await post_token(http, idp.token_url, CC, basic("svc", "secret"))
    await post_token(http, idp.token_url, CC)
    await call_resource(http, idp, token)
    assert (idp.token_requests(), idp.issued_tokens(), idp.resource_requests) == (4, 2, 1)
    assert (idp.token_requests("svc"), idp.issued_tokens("svc")) == (2, 1)
    async with http.get(idp.url + "/stats") as response:
        stats = await response.json()
    assert stats == {
        "token_requests": 4,
        "issued_tokens": 2,
        "per_client": {
            "dev-client": {"token_requests": 1, "issued_tokens": 1},
            "svc": {"token_requests": 2, "issued_tokens": 1},
        },
        "resource_requests": 1,
        "jwks_requests": 0,
        "metadata_requests": 0,
    }
    log = idp.requests_log
    assert [(r.client_id, r.status) for r in log] == [
        ("dev-client", 200),
        ("svc", 401),
        ("svc", 200),
        (None, 401),
    ]
    assert all(a.arrival <= b.arrival for a, b in itertools.pairwise(log))
    idp.reset_counters()
    assert (
        idp.token_requests(),
        idp.issued_tokens(),
        idp.resource_requests,
        idp.requests_log,
    ) == (0, 0, 0, [])


# -- keys and JWKS ----------------------------------------------------------------------------


async def test_key_rotation(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    first_kid = idp.signing_key_id
    old = (await get_token(http, idp))["access_token"]
    idp.rotate_key()
    async with http.get(idp.jwks_url) as response:
        jwks = await response.json()
    assert [k["kid"] for k in jwks["keys"]] == [idp.signing_key_id, first_kid]
    assert all(
        k["kty"] == "RSA" and k["use"] == "sig" and k["alg"] == "RS256" for k in jwks["keys"]
    )
    new = (await get_token(http, idp))["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == idp.signing_key_id != first_kid
    assert (await call_resource(http, idp, old))[0] == 200
    idp.rotate_key()
    assert first_kid not in [k["kid"] for k in idp.public_jwks["keys"]]
    assert len(idp.public_jwks["keys"]) == 2
    assert (await call_resource(http, idp, old))[0] == 401
    assert (await call_resource(http, idp, new))[0] == 200


async def test_forged_and_tampered_tokens(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    key = idp.signing_key_pem  # pyjwt signs with a PEM directly
    claims = {"iss": idp.issuer, "sub": "forged", "exp": int(time.time()) + 60}
    forged = jwt.encode(claims, key, algorithm="RS256", headers={"kid": idp.signing_key_id})
    status, body, _ = await call_resource(http, idp, forged)
    assert (status, body["sub"]) == (200, "forged")
    header, _payload, signature = (await get_token(http, idp))["access_token"].split(".")
    evil = (
        base64.urlsafe_b64encode(json.dumps({**claims, "sub": "evil"}).encode())
        .rstrip(b"=")
        .decode()
    )
    assert (await call_resource(http, idp, f"{header}.{evil}.{signature}"))[0] == 401
    other_issuer = jwt.encode(
        {**claims, "iss": "https://evil.example"},
        key,
        algorithm="RS256",
        headers={"kid": idp.signing_key_id},
    )
    assert (await call_resource(http, idp, other_issuer))[0] == 401


# -- discovery ---------------------------------------------------------------------------------


async def test_discovery(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]:
        async with http.get(idp.url + path) as response:
            metadata = await response.json()
        assert metadata["issuer"] == idp.issuer
        assert metadata["token_endpoint"] == idp.token_url
        assert metadata["jwks_uri"] == idp.jwks_url
        assert metadata["grant_types_supported"] == ["client_credentials"]
        assert set(metadata["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none",
        }
        assert {"HS256", "RS256", "PS256", "ES256"} <= set(
            metadata["token_endpoint_auth_signing_alg_values_supported"]
        )
        assert "scopes_supported" not in metadata
    idp.metadata_overrides = {"issuer": "https://mismatch.example"}
    async with http.get(idp.metadata_url) as response:
        assert (await response.json())["issuer"] == "https://mismatch.example"


async def test_discovery_with_issuer_path(http: aiohttp.ClientSession) -> None:
    async with DevAuthServer(issuer_path="/tenant1/") as idp:
        assert idp.issuer == idp.url + "/tenant1"
        assert idp.token_url == idp.url + "/tenant1/token"
        for url in [
            idp.url + "/.well-known/oauth-authorization-server/tenant1",
            idp.url + "/tenant1/.well-known/openid-configuration",
        ]:
            async with http.get(url) as response:
                metadata = await response.json()
            assert (metadata["issuer"], metadata["token_endpoint"]) == (idp.issuer, idp.token_url)
        async with http.get(idp.url + "/.well-known/oauth-authorization-server") as response:
            assert response.status == 404
        form = {**CC, **assertion(idp.client_id, idp.client_secret, idp.issuer)}
        status, body, _ = await post_token(http, idp.token_url, form)
        assert status == 200, body
        assert verify_access_token(idp, body["access_token"])["iss"] == idp.issuer
        assert (await call_resource(http, idp, body["access_token"]))[0] == 200
        async with http.get(idp.jwks_url) as response:
            assert len((await response.json())["keys"]) == 1


# -- the protected resource -------------------------------------------------------------------


async def test_resource_rejections(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    async with http.get(idp.resource_url) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="tokenfleet-dev"'
    status, _, response = await call_resource(http, idp, "garbage")
    assert status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    token = (await get_token(http, idp))["access_token"]
    idp.revoke(token)
    assert (await call_resource(http, idp, token))[0] == 401


async def test_resource_subpaths_and_methods(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    token = (await get_token(http, idp))["access_token"]
    headers = {"Authorization": f"bearer {token}"}
    async with http.post(idp.resource_url + "/orders/42", headers=headers, data=b"{}") as response:
        assert response.status == 200
    assert idp.resource_requests == 1


async def test_expired_token(idp: DevAuthServer, http: aiohttp.ClientSession) -> None:
    idp.token_lifetime = 0.3
    token = (await get_token(http, idp))["access_token"]
    assert (await call_resource(http, idp, token))[0] == 200
    await asyncio.sleep(0.4)
    assert (await call_resource(http, idp, token))[0] == 401


async def test_many_concurrent_resource_requests(
    idp: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    token = (await get_token(http, idp))["access_token"]
    results = await asyncio.gather(*(call_resource(http, idp, token) for _ in range(2000)))
    assert {status for status, _, _ in results} == {200}
    assert idp.resource_requests == 2000


# -- running it: threads, the fixture, the command line ---------------------------------------


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tokenfleet-dev-server"]


async def test_run_in_thread(http: aiohttp.ClientSession) -> None:
    with DevAuthServer(token_lifetime=60).run_in_thread() as idp:
        assert len(_server_threads()) == 1
        idp.inject_fault(Fault(status=503), count=1)
        assert (
            await post_token(http, idp.token_url, CC, basic(idp.client_id, idp.client_secret))
        )[0] == 503
        body = await get_token(http, idp)
        assert body["expires_in"] == 60
    assert _server_threads() == []


def test_run_in_thread_start_failure() -> None:
    with DevAuthServer().run_in_thread() as running:
        port = int(running.url.rsplit(":", 1)[1])
        clash = DevAuthServer(port=port).run_in_thread()
        with pytest.raises(RuntimeError, match="failed to start") as excinfo:
            clash.__enter__()
        assert isinstance(excinfo.value.__cause__, OSError)


async def test_start_twice(idp: DevAuthServer) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        await idp.start()
    await idp.stop()
    await idp.stop()


async def test_fixture_with_async_test(
    tokenfleet_server: DevAuthServer, http: aiohttp.ClientSession
) -> None:
    body = await get_token(http, tokenfleet_server)
    assert verify_access_token(tokenfleet_server, body["access_token"])
    assert tokenfleet_server.issued_tokens() == 1


def test_fixture_with_sync_test(tokenfleet_server: DevAuthServer) -> None:
    idp = tokenfleet_server
    credentials = basic(idp.client_id, idp.client_secret)
    assert sync_post(idp.token_url, credentials)["token_type"] == "Bearer"
    idp.inject_fault(Fault(status=503), count=1)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        sync_post(idp.token_url, credentials)
    assert excinfo.value.code == 503
    excinfo.value.close()


def test_command_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    command = [
        sys.executable,
        "-m",
        "tokenfleet.testing",
        "--lifetime",
        "30",
        "--issuer-path",
        "/t",
    ]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        lines = {}
        for line in process.stdout:
            if line.startswith("Ctrl-C"):
                break
            name, _, value = line.partition(":")
            lines[name] = value.strip()
        assert lines["token_url"].endswith("/t/token")
        credentials = basic(lines["client_id"], lines["client_secret"])
        assert sync_post(lines["token_url"], credentials)["expires_in"] == 30
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
