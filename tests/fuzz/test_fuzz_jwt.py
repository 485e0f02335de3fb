"""Fuzzing JWT reading and verification with garbled, structured JWTs.

tests/unit/test_jwt.py fuzzes ``read_claims`` with random text (almost never a JWT).
These build JWT-shaped strings from random JSON headers and claims (hostile types and
values in every registered claim), random segments and separators, and tokens properly
signed by the dev server's key around random claims, so the checks behind the parser run
too. The promise: ``read_claims`` gives ``Claims`` or ``None``; ``JWTVerifier.verify``
gives ``Claims`` or a ``TokenFleetError``; nothing else, never a hang.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfleet import JWTVerifier, Token, TokenFleetError
from tokenfleet._jwt.claims import Claims, read_claims
from tokenfleet.testing import DevAuthServer

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
_CLAIMS = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "scp", "client_id", "azp"]
_claims = st.dictionaries(st.sampled_from(_CLAIMS) | st.text(max_size=6), _values, max_size=8)
_header = st.dictionaries(
    st.sampled_from(["alg", "kid", "typ", "crit", "jku", "x5u", "cty"]),
    st.one_of(
        st.sampled_from(["RS256", "ES256", "HS256", "none", "None", "PS512", "EdDSA", "RS1"]),
        _values,
    ),
    max_size=5,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(b64(json.dumps(value).encode())),
        st.just(base64.b64encode(json.dumps(value).encode()).decode()),  # padded, std
        st.binary(max_size=40).map(b64),
        st.text(max_size=20),
    )


@st.composite
def garbled_jwts(draw: st.DrawFn) -> str:
    header = draw(segment(draw(_header)))
    payload = draw(segment(draw(_claims)))
    signature = draw(st.binary(max_size=300).map(b64))
    dots = draw(st.sampled_from([".", ".", ".", "..", " .", ".\n"]))
    return dots.join([header, payload, signature])


@given(garbled_jwts())
def test_reading_garbled_jwts_gives_claims_or_none(token: str) -> None:
    result = read_claims(token)
    assert result is None or isinstance(result, Claims)
    # and through a Token, as applications read them
    claims = Token(access_token=token or "x", expires_at=1.0, issued_at=0.0).claims
    assert claims is None or isinstance(claims, Claims)


@st.composite
def signed_jwts(draw: st.DrawFn, idp: DevAuthServer) -> str:
    """The dev server's real key around random claims: the signature verifies."""
    claims = draw(_claims)
    header = {"kid": idp.signing_key_id, **draw(_header)}
    header.pop("alg", None)
    try:
        return jwt.encode(claims, idp.signing_key_pem, algorithm="RS256", headers=header)
    except (TypeError, ValueError, jwt.PyJWTError):  # pyjwt refuses to encode some
        return jwt.encode({}, idp.signing_key_pem, algorithm="RS256")


def test_verifying_garbled_and_signed_jwts_gives_claims_or_a_typed_error(
    threaded_idp: DevAuthServer,
) -> None:
    @settings(max_examples=150)
    @given(st.one_of(garbled_jwts(), signed_jwts(threaded_idp)))
    def check(token: str) -> None:
        async def verify() -> None:
            async with asyncio.timeout(10):
                verifier = JWTVerifier(
                    issuer=threaded_idp.issuer,
                    audience=threaded_idp.resource_url,
                    jwks_url=threaded_idp.jwks_url,
                    jwks_refresh_interval=3600,  # unknown kids: no refetch storm
                )
                try:
                    claims = await verifier.verify(token)
                except TokenFleetError:
                    return
                finally:
                    await verifier.aclose()
                assert isinstance(claims, Claims)

        asyncio.run(verify())

    check()


# Found by fuzzing (the same msgspec behaviour as in _client/response.py): invalid UTF-8 inside a
# JSON string raises UnicodeDecodeError, which the JWKS and metadata parsers let through.
@pytest.mark.parametrize("document", ["jwks", "metadata"])
def test_invalid_utf8_in_a_jwks_or_metadata_document_is_a_typed_error(document: str) -> None:
    from tokenfleet._client import discovery as _discovery
    from tokenfleet._jwt import jwks as _jwks

    with pytest.raises(TokenFleetError):
        if document == "jwks":
            _jwks.parse_jwks(b'{"keys": "\xff"}', url="https://idp.example/jwks", allowed=None)
        else:
            _discovery.parse_metadata(
                b'{"issuer": "\xff"}', url="https://idp.example/.well-known/x", issuer="https://x"
            )
