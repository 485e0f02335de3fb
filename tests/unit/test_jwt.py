"""Reading JWT access tokens, the expiry/scope rules of token parsing, claim checks,
JWK Set policy and discovery URL rules: all pure, no network."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tokenfleet import (
    Claims,
    ConfigurationError,
    DisallowedAlgorithm,
    DiscoveryError,
    InvalidAudience,
    InvalidIssuer,
    InvalidTokenResponse,
    IssuerMismatch,
    MalformedToken,
    Token,
    TokenExpired,
    TokenNotYetValid,
    UnknownKey,
    UnsupportedAuthMethod,
)
from tokenfleet._client import discovery as _discovery
from tokenfleet._client import response as _response
from tokenfleet._jwt import claims as _jwt
from tokenfleet._jwt import jwks as _jwks

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
NOW = 1_700_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any], *, typ: str = "at+jwt", kid: str = "k1") -> str:
    return jwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"typ": typ, "kid": kid})


def raw_jwt(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join(
        (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature))
    )


def response(**members: Any) -> bytes:
    return json.dumps({"token_type": "Bearer", **members}).encode()


def parse(body: bytes, requested: tuple[str, ...] = ("a", "b")) -> Token:
    return _response.parse_token_response(
        body, requested_scopes=requested, issued_at=NOW, default_lifetime=3600.0
    )


# --------------------------------------------------------------------------- reading


def test_claims_of_an_rfc9068_token() -> None:
    token = make_jwt(
        {
            "iss": "https://idp",
            "sub": "svc",
            "client_id": "svc",
            "aud": ["api", "other"],
            "exp": NOW + 60,
            "iat": NOW,
            "nbf": NOW,
            "jti": "j1",
            "scope": "a b a",
            "tenant": "t1",
        }
    )
    claims = _jwt.read_claims(token)
    assert claims == Claims(
        iss="https://idp",
        sub="svc",
        client_id="svc",
        aud=["api", "other"],
        exp=NOW + 60,
        iat=NOW,
        nbf=NOW,
        jti="j1",
        scopes=("a", "b"),
        typ="at+jwt",
        alg="RS256",
        kid="k1",
        extra={"tenant": "t1"},
    )
    assert claims.is_access_token
    assert claims.audiences == ("api", "other")


@pytest.mark.parametrize(
    ("payload", "scopes"),
    [
        ({"scp": ["x", "y"]}, ("x", "y")),
        ({"scp": "x y"}, ("x", "y")),
        ({"scope": "s", "scp": ["x"]}, ("s",)),
        ({}, ()),
    ],
)
def test_scope_or_scp(payload: dict[str, Any], scopes: tuple[str, ...]) -> None:
    claims = _jwt.read_claims(make_jwt({"exp": NOW, **payload}))
    assert claims is not None and claims.scopes == scopes


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_at_jwt_is_recognised(typ: str) -> None:
    claims = _jwt.read_claims(make_jwt({"exp": NOW}, typ=typ))
    assert claims is not None and claims.is_access_token


def test_plain_jwt_is_not_an_at_jwt() -> None:
    claims = _jwt.read_claims(make_jwt({"exp": NOW}, typ="JWT"))
    assert claims is not None and not claims.is_access_token


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token-value",
        "a.b",
        "a.b.c.d.e",  # a JWE
        "eyJhbGciOiJSUzI1NiJ9.not base64!.sig",
        raw_jwt({"alg": "RS256"}, {"exp": "tomorrow"}),  # a claim of the wrong type
        raw_jwt({"alg": "RS256"}, {"exp": True}),
        raw_jwt({"alg": "RS256"}, {"aud": 5}),
        b64(b"[1]") + "." + b64(b"{}") + ".x",  # header not an object
    ],
)
def test_not_a_readable_jwt_gives_none(token: str) -> None:
    assert _jwt.read_claims(token) is None
    assert Token(access_token=token, expires_at=NOW, issued_at=NOW).claims is None


@given(st.text(max_size=200))
def test_reading_never_raises(text: str) -> None:
    result = _jwt.read_claims(text)
    assert result is None or isinstance(result, Claims)


def test_cache_is_bounded_and_returns_the_same_object() -> None:
    token = make_jwt({"exp": NOW, "jti": "cached"})
    first = _jwt.read_claims(token)
    assert _jwt.read_claims(token) is first
    for n in range(600):
        _jwt.read_claims(f"opaque-{n}")
    assert len(_jwt._cache) <= _jwt._CACHE_SIZE


def test_token_claims_and_repr_never_show_the_token() -> None:
    access_token = make_jwt({"exp": NOW, "sub": "svc"})
    token = Token(access_token=access_token, expires_at=NOW, issued_at=NOW)
    assert token.claims is not None and token.claims.sub == "svc"
    assert access_token not in repr(token.claims)
    assert access_token.split(".")[2] not in repr(token.claims)
    assert access_token not in repr(token)


def test_claims_encode_with_msgspec() -> None:
    claims = _jwt.read_claims(make_jwt({"exp": NOW, "scope": "a"}))
    assert msgspec.json.decode(msgspec.json.encode(claims), type=Claims) == claims


# --------------------------------------------------------------------------- parsing


def test_no_expires_in_uses_the_jwt_exp() -> None:
    token = parse(response(access_token=make_jwt({"exp": NOW + 120})))
    assert token.expires_at == NOW + 120


def test_opaque_without_expires_in_uses_the_default() -> None:
    token = parse(response(access_token="opaque"))
    assert token.expires_at == NOW + 3600


@pytest.mark.parametrize(("expires_in", "exp", "lifetime"), [(600, 120, 120), (60, 3600, 60)])
def test_both_present_take_the_earlier(expires_in: int, exp: int, lifetime: int) -> None:
    token = parse(response(access_token=make_jwt({"exp": NOW + exp}), expires_in=expires_in))
    assert token.lifetime == lifetime


def test_exp_in_the_past_with_expires_in_trusts_expires_in() -> None:
    # A server does not issue expired tokens: our clock is off. Do not refresh in a loop.
    token = parse(response(access_token=make_jwt({"exp": NOW - 500}), expires_in=300))
    assert token.lifetime == 300


def test_exp_in_the_past_without_expires_in_is_refused() -> None:
    with pytest.raises(InvalidTokenResponse, match="clock") as info:
        parse(response(access_token=make_jwt({"exp": NOW - 500})))
    assert "eyJ" not in str(info.value)


def test_absurd_exp_is_capped() -> None:
    token = parse(response(access_token=make_jwt({"exp": NOW + 1e12})))
    assert token.lifetime == _response.MAX_LIFETIME


def test_scopes_from_the_response_win() -> None:
    token = parse(response(access_token=make_jwt({"exp": NOW + 60, "scope": "x"}), scope="a"))
    assert token.scopes == ("a",)


def test_no_scope_in_the_response_uses_the_jwt() -> None:
    token = parse(response(access_token=make_jwt({"exp": NOW + 60, "scp": ["a"]})))
    assert token.scopes == ("a",)


def test_no_scope_anywhere_means_as_requested() -> None:
    assert parse(response(access_token="opaque")).scopes == ("a", "b")
    assert parse(response(access_token=make_jwt({"exp": NOW + 60}))).scopes == ("a", "b")


def test_missing_scopes() -> None:
    assert _response.missing_scopes(("a", "b", "c"), ("c", "a")) == ("b",)
    assert _response.missing_scopes(("a",), ("a", "z")) == ()
    assert _response.missing_scopes((), ()) == ()


# --------------------------------------------------------------------------- claim checks


def claims(**members: Any) -> Claims:
    base: dict[str, Any] = {"iss": "https://idp", "aud": "api", "exp": NOW + 60}
    return Claims(**{**base, **members})


def check(value: Claims, audiences: set[str] | None = None, leeway: float = 30) -> None:
    _jwt.check_claims(
        value,
        issuer="https://idp",
        audiences={"api"} if audiences is None else audiences,
        now=NOW,
        leeway=leeway,
    )


def test_valid_claims_pass() -> None:
    check(claims())
    check(claims(aud=["other", "api"]))
    check(claims(exp=NOW - 10))  # within the leeway
    check(claims(nbf=NOW + 10))
    _jwt.check_claims(claims(aud=None), issuer="https://idp", audiences=None, now=NOW, leeway=0)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (claims(iss="https://evil"), InvalidIssuer),
        (claims(iss=None), InvalidIssuer),
        (claims(aud="other"), InvalidAudience),
        (claims(aud=["x", "y"]), InvalidAudience),
        (claims(aud=None), InvalidAudience),
        (claims(exp=NOW - 31), TokenExpired),
        (claims(exp=None), MalformedToken),
        (claims(nbf=NOW + 31), TokenNotYetValid),
    ],
)
def test_refused_claims(value: Claims, error: type[Exception]) -> None:
    with pytest.raises(error):
        check(value)


# --------------------------------------------------------------------------- JWK Sets


def rsa_jwk(**members: Any) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    return {**jwk, "kid": "r1", **members}


def keyset(*jwks: dict[str, Any], allowed: frozenset[str] | None = None) -> _jwks.KeySet:
    body = json.dumps({"keys": list(jwks)}).encode()
    return _jwks.parse_jwks(body, url="https://idp/jwks", allowed=allowed)


def test_rsa_key_without_alg_implies_rs256() -> None:
    key = keyset(rsa_jwk()).select("r1", "RS256")
    assert key is not None and key.algorithms == {"RS256"}
    with pytest.raises(DisallowedAlgorithm):
        keyset(rsa_jwk()).select("r1", "PS256")


def test_allow_list_widens_keys_without_alg() -> None:
    allowed = frozenset({"RS256", "PS256"})
    key = keyset(rsa_jwk(), allowed=allowed).select("r1", "PS256")
    assert key is not None and key.algorithms == allowed


def test_ec_key_by_curve() -> None:
    jwk = {**ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True), "kid": "e1"}
    key = keyset(jwk).select("e1", "ES256")
    assert key is not None
    with pytest.raises(DisallowedAlgorithm):
        keyset(jwk).select("e1", "ES384")


def test_key_declared_for_another_alg_is_refused() -> None:
    with pytest.raises(DisallowedAlgorithm, match="RS384"):
        keyset(rsa_jwk(alg="RS384")).select("r1", "RS256")


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"use": "enc"}, "use 'enc'"),
        ({"key_ops": ["encrypt"]}, "key_ops"),
        ({"alg": "HS256"}, "fits none"),
        ({"d": "private"}, "private"),
        ({"kty": "oct", "k": "c2VjcmV0"}, "private or symmetric"),
    ],
)
def test_unusable_keys_explain_themselves(members: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnknownKey, match=reason):
        keyset(rsa_jwk(**members)).select("r1", "RS256")


def test_unknown_kid_is_none_and_no_kid_needs_one_fitting_key() -> None:
    one = keyset(rsa_jwk())
    assert one.select("nope", "RS256") is None
    assert one.select(None, "RS256") is not None
    with pytest.raises(UnknownKey, match="no 'kid'"):
        keyset(rsa_jwk(), rsa_jwk(kid="r2")).select(None, "RS256")


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"keys": 1}', b"garbage"])
def test_not_a_jwks(body: bytes) -> None:
    with pytest.raises(DiscoveryError):
        _jwks.parse_jwks(body, url="https://idp/jwks", allowed=None)


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "XX1"], []])
def test_allow_list_is_asymmetric_only(algorithms: list[str]) -> None:
    with pytest.raises(ConfigurationError):
        _jwks.check_algorithms(algorithms)


# --------------------------------------------------------------------------- discovery


@pytest.mark.parametrize(
    ("issuer", "urls"),
    [
        (
            "https://idp.example.com",
            (
                "https://idp.example.com/.well-known/oauth-authorization-server",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
        ),
        (
            "https://idp.example.com/",
            (
                "https://idp.example.com/.well-known/oauth-authorization-server",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
        ),
        (
            "https://idp.example.com/tenant/1",
            (
                "https://idp.example.com/.well-known/oauth-authorization-server/tenant/1",
                "https://idp.example.com/tenant/1/.well-known/openid-configuration",
            ),
        ),
    ],
)
def test_metadata_urls(issuer: str, urls: tuple[str, str]) -> None:
    assert _discovery.metadata_urls(issuer) == urls


@pytest.mark.parametrize(
    "issuer", ["http://idp.example.com", "https://idp.example.com?x=1", "https://i.example#f", ""]
)
def test_bad_issuers(issuer: str) -> None:
    with pytest.raises(ConfigurationError):
        _discovery.check_issuer(issuer)


def metadata(**members: Any) -> bytes:
    doc = {"issuer": "https://idp", "token_endpoint": "https://idp/token", **members}
    return json.dumps(doc).encode()


def test_parse_metadata_defaults() -> None:
    meta = _discovery.parse_metadata(metadata(x=1), issuer="https://idp", url="u")
    assert meta.token_endpoint_auth_methods_supported == ("client_secret_basic",)
    assert meta.jwks_uri is None and meta.extra == {"x": 1} and meta.url == "u"


def test_issuer_mismatch() -> None:
    with pytest.raises(IssuerMismatch, match="mix-up") as info:
        _discovery.parse_metadata(metadata(), issuer="https://idp/", url="u")
    assert (info.value.expected, info.value.actual) == ("https://idp/", "https://idp")
    assert isinstance(info.value, DiscoveryError)


@pytest.mark.parametrize(
    "members",
    [
        {"token_endpoint": "http://idp.example.com/token"},
        {"jwks_uri": "ftp://idp/jwks"},
        {"token_endpoint": 5},
    ],
)
def test_unusable_metadata(members: dict[str, Any]) -> None:
    with pytest.raises(DiscoveryError):
        _discovery.parse_metadata(metadata(**members), issuer="https://idp", url="u")


def test_unsupported_auth_method_names_the_supported_ones() -> None:
    meta = _discovery.parse_metadata(
        metadata(token_endpoint_auth_methods_supported=["private_key_jwt", "tls_client_auth"]),
        issuer="https://idp",
        url="u",
    )
    with pytest.raises(UnsupportedAuthMethod, match="private_key_jwt, tls_client_auth") as info:
        _discovery.check_auth_method(meta, "client_secret_basic")
    assert isinstance(info.value, ConfigurationError)
    assert info.value.supported == ("private_key_jwt", "tls_client_auth")


def test_reading_is_fast_enough_to_always_do() -> None:
    """Decoding on every fetch is fine only while it stays in the microseconds."""
    token = make_jwt({"exp": NOW, "scope": "a b c", "aud": "api", "iss": "https://idp"})
    parts = _jwt.split_jws(token)
    started = time.perf_counter()
    for _ in range(1000):
        _jwt.claims_from(_jwt.split_jws(token))
    per_token = (time.perf_counter() - started) / 1000
    assert parts.header["kid"] == "k1"
    assert per_token < 500e-6  # generous: a shared 2-core machine
