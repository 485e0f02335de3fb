"""Fuzzing every parser of outside JSON with deep nesting and non-ASCII digits.

Two classes of hostile input that once escaped as ``RecursionError`` and ``ValueError``:
JSON nested thousands of levels deep (small enough to pass every size limit) and digits
that ``str.isdigit()`` or ``float()`` accept but no protocol means (``²``, ``١٢٠``,
fullwidth ``１``). Each parser must answer with its own typed error or a value, whatever
the depth, the bracket mix, the place of the nesting (a member, a JWT header or payload,
a string that only looks nested) and the digits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfleet import Claims, JWTVerifier, Token, TokenFleetError
from tokenfleet._client import discovery, response
from tokenfleet._jwt import claims, jwks
from tokenfleet._util.untrusted_json import UntrustedJSONError, load_object

ISSUER = "https://idp.example"


@st.composite
def nested_values(draw: st.DrawFn) -> bytes:
    """A JSON value nested 1 to 6,000 levels (arrays and objects mixed), sometimes cut
    short, sometimes hidden in a string where the brackets are only text."""
    depth = draw(st.integers(min_value=1, max_value=6_000))
    kinds = draw(st.lists(st.sampled_from(["[", '{"k":']), min_size=1, max_size=3))
    openers = [kinds[i % len(kinds)] for i in range(depth)]
    closers = ["]" if o == "[" else "}" for o in reversed(openers)]
    inner = draw(st.sampled_from(["1", '"x"', "null", "[]", "{}"]))
    text = "".join(openers) + inner + "".join(closers)
    shape = draw(st.sampled_from(["whole", "cut", "string"]))
    if shape == "cut":
        text = text[: draw(st.integers(min_value=1, max_value=len(text)))]
    elif shape == "string":
        text = json.dumps(text)
    return text.encode()


non_ascii_digits = st.text(
    alphabet=st.characters(categories=["Nd", "No"], exclude_characters="0123456789"),
    min_size=1,
    max_size=6,
)
mixed_digits = st.one_of(
    non_ascii_digits,
    st.tuples(st.integers(0, 999), non_ascii_digits).map(lambda t: f"{t[0]}{t[1]}"),
)


def member(value: bytes, **fields: str) -> bytes:
    """A JSON object with ``fields`` and ``value`` as the raw member ``"x"``."""
    return json.dumps(fields).encode()[:-1] + (b", " if fields else b"") + b'"x": ' + value + b"}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@given(nested_values())
def test_the_json_helper_gives_an_object_or_its_own_error(value: bytes) -> None:
    for body in (value, member(value)):
        with contextlib.suppress(UntrustedJSONError):
            assert isinstance(load_object(body), dict)


@given(nested_values(), st.sampled_from([200, 400, 401, 429, 503]))
def test_token_and_error_responses_with_nesting_give_typed_errors(
    value: bytes, status: int
) -> None:
    for body in (value, member(value, access_token="abc", token_type="Bearer")):
        with contextlib.suppress(TokenFleetError):
            response.parse_token_response(
                body, status=status, requested_scopes=(), issued_at=0.0, default_lifetime=60.0
            )
        error = response.parse_error_response(
            body, status=max(status, 400), content_type="application/json", retry_after=None
        )
        assert isinstance(error, TokenFleetError)


@given(nested_values())
def test_metadata_and_jwks_with_nesting_give_discovery_errors(value: bytes) -> None:
    metadata = member(value, issuer=ISSUER, token_endpoint=ISSUER + "/token")
    for body in (value, metadata):
        with contextlib.suppress(TokenFleetError):
            discovery.parse_metadata(body, issuer=ISSUER, url=ISSUER + "/.well-known/x")
    keys = b'{"keys": [{"kty": "RSA", "n": ' + value + b"}]}"
    for body in (value, keys, member(value)):
        with contextlib.suppress(TokenFleetError):
            jwks.parse_jwks(body, url=ISSUER + "/jwks", allowed=None)


@given(nested_values(), st.booleans())
def test_jwts_with_nesting_read_as_not_a_jwt(value: bytes, in_header: bool) -> None:
    plain = b64(b'{"alg": "RS256"}')
    nested = b64(member(value))
    token = f"{nested}.{plain}.c2ln" if in_header else f"{plain}.{nested}.c2ln"
    found = claims.read_claims(token)
    assert found is None or isinstance(found, Claims)
    found = Token(access_token=token, expires_at=1.0, issued_at=0.0).claims
    assert found is None or isinstance(found, Claims)


@settings(max_examples=40)
@given(nested_values(), st.booleans())
def test_verifier_refuses_nested_jwts_with_a_typed_error(value: bytes, in_header: bool) -> None:
    plain = b64(b'{"alg": "RS256", "kid": "k"}')
    nested = b64(member(value))
    token = f"{nested}.{plain}.c2ln" if in_header else f"{plain}.{nested}.c2ln"

    async def verify() -> None:
        # Nothing listens on port 9: reaching for keys is a TransportError (typed, too).
        async with JWTVerifier(
            issuer="http://127.0.0.1:9", audience=None, jwks_url="http://127.0.0.1:9/jwks"
        ) as verifier:
            with contextlib.suppress(TokenFleetError):
                await verifier.verify(token)

    asyncio.run(verify())


@given(mixed_digits)
def test_retry_after_with_non_ascii_digits_is_ignored(value: str) -> None:
    assert response.parse_retry_after(value, now=0.0) is None
    assert response.parse_retry_after(f" {value} ", now=0.0) is None


@given(mixed_digits)
def test_expires_in_with_non_ascii_digits_is_an_invalid_token_response(value: str) -> None:
    body = json.dumps({"access_token": "abc", "token_type": "Bearer", "expires_in": value})
    try:
        token = response.parse_token_response(
            body.encode(), requested_scopes=(), issued_at=0.0, default_lifetime=60.0
        )
    except TokenFleetError:
        return
    raise AssertionError(f"expires_in {value!r} was read as {token.expires_at} s")
