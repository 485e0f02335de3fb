"""Hostile JSON from outside (token responses, JWTs, metadata, JWK Sets) and hostile
``Retry-After`` values: each parser answers with its own typed error, never a
``RecursionError`` or ``ValueError``. Pure, no network."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator, Mapping

import pytest

from tokenfleet import (
    DiscoveryError,
    InvalidTokenResponse,
    JWTVerifier,
    MalformedToken,
    OAuthError,
    Token,
)
from tokenfleet._client import discovery, response
from tokenfleet._jwt import claims, jwks
from tokenfleet._util.untrusted_json import MAX_DEPTH, exceeds_depth, load_object

DEEP = 5_000
NESTED = b'{"a":' + b"[" * DEEP + b"]" * DEEP + b"}"  # 10 KB, under every size limit


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HEADER = b64(b'{"alg":"RS256","kid":"k1"}')
PAYLOAD = b64(b'{"iss":"https://idp.example","exp":4102444800}')


def test_nesting_depth_is_bounded_outside_strings() -> None:
    assert exceeds_depth(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert not exceeds_depth(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    text = json.dumps({"a": "[" * 500 + '\\"' + "{" * 500}).encode()
    assert not exceeds_depth(text)
    assert load_object(text) == json.loads(text)


@pytest.mark.parametrize("where", ["header", "payload"])
async def test_deeply_nested_jwt_is_a_malformed_token_before_any_key_lookup(where: str) -> None:
    header, payload = (b64(NESTED), PAYLOAD) if where == "header" else (HEADER, b64(NESTED))
    assert len(header) + len(payload) < 16 * 1024
    # No server listens on port 9: a key lookup would be a TransportError, not this.
    verifier = JWTVerifier(
        issuer="http://127.0.0.1:9", audience=None, jwks_url="http://127.0.0.1:9/jwks"
    )
    async with verifier:
        with pytest.raises(MalformedToken):
            await verifier.verify(f"{header}.{payload}.c2ln")


def test_deeply_nested_jwt_claims_read_as_not_a_jwt() -> None:
    token = Token(access_token=f"{HEADER}.{b64(NESTED)}.c2ln", expires_at=4.1e9, issued_at=0.0)
    assert token.claims is None  # as for any other garbage in a token


def test_deeply_nested_token_response_is_an_invalid_token_response() -> None:
    body = b'{"access_token":"abc","token_type":"Bearer","x":' + NESTED + b"}"
    with pytest.raises(InvalidTokenResponse):
        response.parse_token_response(
            body, requested_scopes=(), issued_at=0.0, default_lifetime=60.0
        )


def test_deeply_nested_error_response_is_still_a_typed_error() -> None:
    error = response.parse_error_response(
        NESTED, status=400, content_type="application/json", retry_after=None
    )
    assert isinstance(error, OAuthError)


def test_deeply_nested_discovery_document_is_a_discovery_error() -> None:
    issuer = "https://idp.example"
    body = json.dumps({"issuer": issuer, "token_endpoint": issuer + "/token"}).encode()
    body = body[:-1] + b',"extra":' + NESTED + b"}"
    with pytest.raises(DiscoveryError):
        discovery.parse_metadata(body, issuer=issuer, url=issuer + "/.well-known/x")


@pytest.mark.parametrize("member", ["token_endpoint", "mtls_endpoint_aliases"])
def test_an_unparseable_discovered_endpoint_is_a_discovery_error(member: str) -> None:
    # A server's URL that urlsplit refuses ("Invalid IPv6 URL") was a bare ValueError.
    issuer = "https://idp.example"
    document: dict[str, object] = {"issuer": issuer, "token_endpoint": issuer + "/token"}
    if member == "token_endpoint":
        document["token_endpoint"] = "https://[::1/token"
    else:
        document["mtls_endpoint_aliases"] = {"token_endpoint": "https://[::1/token"}
    with pytest.raises(DiscoveryError, match="not a valid URL"):
        metadata = discovery.parse_metadata(
            json.dumps(document).encode(), issuer=issuer, url=issuer + "/.well-known/x"
        )
        alias = metadata.mtls_endpoint_aliases["token_endpoint"]
        discovery.check_endpoint(alias, "mtls token_endpoint", metadata.url, False)


def test_deeply_nested_jwks_is_a_discovery_error() -> None:
    body = b'{"keys":[{"kty":"RSA","x5c":' + NESTED + b"}]}"
    with pytest.raises(DiscoveryError):
        jwks.parse_jwks(body, url="https://idp.example/jwks", allowed=None)


@pytest.mark.parametrize("value", ["²", "١٢٠", "٣", "1²", "１０"])
def test_non_ascii_digits_in_retry_after_are_ignored(value: str) -> None:
    # RFC 9110 §10.2.3: delta-seconds is 1*DIGIT, and DIGIT is ASCII 0-9 (RFC 5234 B.1).
    assert value.isdigit() or not value.isascii()
    assert response.parse_retry_after(value, now=0.0) is None


def test_claims_cache_holds_no_raw_access_token() -> None:
    token = f"{HEADER}.{PAYLOAD}.{b64(b'unique signature for this test')}"
    assert claims.read_claims(token) is not None
    assert not list(_tables_keyed_by(token)), "a module table keeps the raw token as a key"


def _tables_keyed_by(key: str) -> Iterator[str]:
    """Module-level mappings of tokenfleet (or mappings one attribute down) with ``key``.

    (``gc.get_referrers`` would be simpler, but misses objects a test runner has frozen.)
    """
    for name, module in list(sys.modules.items()):
        if not name.startswith("tokenfleet"):
            continue
        for attr, value in vars(module).items():
            inner = getattr(value, "__dict__", {}) if not isinstance(value, type) else {}
            candidates = [value, *inner.values()]
            for slot in getattr(type(value), "__slots__", ()):
                candidates.append(getattr(value, slot, None))
            if any(_has_key(c, key) for c in candidates):
                yield f"{name}.{attr}"


def _has_key(candidate: object, key: str) -> bool:
    try:
        return isinstance(candidate, Mapping) and key in candidate
    except TypeError:  # a mapping keyed by another type
        return False


@pytest.mark.parametrize("where", [0, 1, 2])
async def test_malformed_token_error_chain_does_not_carry_the_token(where: int) -> None:
    segments = [HEADER, PAYLOAD, b64(b"signature-bytes")]
    segments[where] = segments[where][:-2] + "é" + segments[where][-1]  # not ASCII
    token = ".".join(segments)
    async with JWTVerifier(
        issuer="http://127.0.0.1:9", audience=None, jwks_url="http://127.0.0.1:9/jwks"
    ) as verifier:
        with pytest.raises(MalformedToken) as caught:
            await verifier.verify(token)
    error: BaseException | None = caught.value
    while error is not None:  # UnicodeEncodeError.object would be the whole segment
        for text in (repr(error), repr(getattr(error, "object", ""))):
            assert segments[where][:-3] not in text
        error = error.__cause__ or error.__context__


@pytest.mark.parametrize("member", ["kty", "alg"])
def test_a_jwks_key_with_a_non_string_kty_or_alg_is_set_aside(member: str) -> None:
    jwk: dict[str, object] = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k"}
    jwk[member] = {"not": "a string"}
    body = json.dumps({"keys": [jwk]}).encode()
    keys = jwks.parse_jwks(body, url="https://idp.example/jwks", allowed=None)
    assert keys.keys == () and "k" in keys.unusable
