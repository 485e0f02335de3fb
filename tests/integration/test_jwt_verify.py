"""JWTVerifier against the dev authorization server's real JWKS, over loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import tokenfleet
from helpers import client_for
from tokenfleet import (
    ConfigurationError,
    DisallowedAlgorithm,
    InvalidAudience,
    InvalidIssuer,
    InvalidSignature,
    JWTVerifier,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    TokenVerificationError,
    UnknownKey,
)
from tokenfleet.testing import DevAuthServer


async def fetch(idp: DevAuthServer, **kw: Any) -> tokenfleet.Token:
    async with client_for(idp, **kw) as client:
        return await client.fetch_token()


def verifier(idp: DevAuthServer, **kw: Any) -> JWTVerifier:
    args: dict[str, Any] = {
        "issuer": idp.issuer,
        "audience": idp.resource_url,
        "jwks_url": idp.jwks_url,
        **kw,
    }
    return JWTVerifier(**args)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(idp: DevAuthServer, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    """A token signed with the server's real current key, with chosen claims."""
    now = int(time.time())
    payload = {
        "iss": idp.issuer,
        "sub": idp.client_id,
        "client_id": idp.client_id,
        "aud": idp.resource_url,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    head = {"typ": "at+jwt", "kid": idp.signing_key_id, **(headers or {})}
    return jwt.encode(payload, idp.signing_key_pem, algorithm="RS256", headers=head)


def public_pem(idp: DevAuthServer) -> bytes:
    key = serialization.load_pem_private_key(idp.signing_key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def hand_made(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWS built by hand: HMAC-SHA256 with ``key``, or unsigned when ``key`` is None."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    if key is None:
        return signing_input + "."
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


# --------------------------------------------------------------------------- accepting


async def test_verifies_a_real_token(idp: DevAuthServer) -> None:
    token = await fetch(idp, scopes=["orders:read"])
    async with verifier(idp) as v:
        claims = await v.verify(token)
        assert claims == await v.verify(token.access_token)
    assert claims.sub == claims.client_id == idp.client_id
    assert claims.scopes == ("orders:read",)
    assert claims.is_access_token and claims.kid == idp.signing_key_id
    assert claims == token.claims  # reading and verifying agree
    assert idp.jwks_requests == 1


async def test_discovers_the_jwks_from_the_issuer(idp: DevAuthServer) -> None:
    token = await fetch(idp)
    async with verifier(idp, jwks_url=None) as v:
        await v.verify(token)
        await v.verify(token)
        assert v.jwks_url == idp.jwks_url
    assert (idp.metadata_requests, idp.jwks_requests) == (1, 1)


async def test_jwks_url_from_the_client_metadata(idp: DevAuthServer) -> None:
    async with client_for(idp, issuer=idp.issuer) as client:
        token = await client.fetch_token()
        meta = await client.metadata()
    async with JWTVerifier(
        issuer=meta.issuer, audience=idp.resource_url, jwks_url=meta.jwks_uri
    ) as v:
        assert (await v.verify(token)).iss == idp.issuer


async def test_accepts_a_list_audience_and_one_of_several(idp: DevAuthServer) -> None:
    token = forge(idp, aud=["https://other", idp.resource_url])
    async with verifier(idp, audience=["https://a", idp.resource_url]) as v:
        assert (await v.verify(token)).audiences == ("https://other", idp.resource_url)


async def test_leeway(idp: DevAuthServer) -> None:
    now = int(time.time())
    async with verifier(idp, leeway=30) as v:
        await v.verify(forge(idp, exp=now - 10))
        await v.verify(forge(idp, nbf=now + 10))


# --------------------------------------------------------------------------- refusing


async def test_tampered_signature(idp: DevAuthServer) -> None:
    header, payload, signature = (await fetch(idp)).access_token.split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    async with verifier(idp) as v:
        with pytest.raises(InvalidSignature):
            await v.verify(f"{header}.{payload}.{flipped}")


async def test_tampered_payload(idp: DevAuthServer) -> None:
    header, payload, signature = forge(idp, scope="orders:read").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "orders:read admin"
    tampered = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    async with verifier(idp) as v:
        with pytest.raises(InvalidSignature):
            await v.verify(tampered)


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"aud": "https://someone-else"}, InvalidAudience),
        ({"aud": None}, InvalidAudience),
        ({"iss": "https://evil.example"}, InvalidIssuer),
        ({"exp": -120}, TokenExpired),  # relative to now, resolved in the test
        ({"nbf": +120}, TokenNotYetValid),
        ({"exp": None}, MalformedToken),
        ({"exp": "soon"}, MalformedToken),
    ],
)
async def test_refused_claims(
    idp: DevAuthServer, claims: dict[str, Any], error: type[TokenVerificationError]
) -> None:
    now = int(time.time())  # at run time: parameters are built at collection time
    claims = {
        k: now + v if k in ("exp", "nbf") and isinstance(v, int) else v for k, v in claims.items()
    }
    token = forge(idp, **claims)
    async with verifier(idp) as v:
        with pytest.raises(error) as info:
            await v.verify(token)
    assert token not in str(info.value)


async def test_wrong_audience_from_the_server(idp: DevAuthServer) -> None:
    token = await fetch(idp, audience="https://billing.example")
    async with verifier(idp) as v:
        with pytest.raises(InvalidAudience, match="billing"):
            await v.verify(token)


async def test_alg_none(idp: DevAuthServer) -> None:
    now = int(time.time())
    payload = {"iss": idp.issuer, "aud": idp.resource_url, "exp": now + 60}
    for alg in ("none", "None", "NONE"):
        token = hand_made({"alg": alg, "kid": idp.signing_key_id}, payload, None)
        async with verifier(idp) as v:
            with pytest.raises(DisallowedAlgorithm, match="unsigned"):
                await v.verify(token)


async def test_hs256_signed_with_the_public_key(idp: DevAuthServer) -> None:
    """The algorithm-confusion attack: HMAC keyed with the (public) RSA key's PEM."""
    now = int(time.time())
    payload = {"iss": idp.issuer, "aud": idp.resource_url, "exp": now + 60, "sub": "admin"}
    header = {"alg": "HS256", "typ": "at+jwt", "kid": idp.signing_key_id}
    token = hand_made(header, payload, public_pem(idp))
    async with verifier(idp) as v:
        with pytest.raises(DisallowedAlgorithm, match="algorithm-confusion"):
            await v.verify(token)
    assert idp.jwks_requests == 0  # refused before any key was looked up
    with pytest.raises(ConfigurationError):
        verifier(idp, algorithms=["HS256"])


async def test_algorithm_outside_the_allow_list(idp: DevAuthServer) -> None:
    async with verifier(idp, algorithms=["ES256"]) as v:
        with pytest.raises(DisallowedAlgorithm, match="not allowed"):
            await v.verify(await fetch(idp))


async def test_key_published_for_encryption(idp: DevAuthServer) -> None:
    jwks = idp.public_jwks
    jwks["keys"][0]["use"] = "enc"
    idp.jwks_override = jwks
    async with verifier(idp) as v:
        with pytest.raises(UnknownKey, match="use 'enc'"):
            await v.verify(await fetch(idp))


async def test_key_declared_for_another_algorithm(idp: DevAuthServer) -> None:
    jwks = idp.public_jwks
    jwks["keys"][0]["alg"] = "PS256"
    idp.jwks_override = jwks
    async with verifier(idp) as v:
        with pytest.raises(DisallowedAlgorithm, match="PS256"):
            await v.verify(await fetch(idp))


async def test_typ_is_checked_when_required(idp: DevAuthServer) -> None:
    token = forge(idp, headers={"typ": "JWT"})
    async with verifier(idp) as v:
        await v.verify(token)
    async with verifier(idp, require_at_jwt=True) as v:
        with pytest.raises(MalformedToken, match="at\\+jwt"):
            await v.verify(token)


@pytest.mark.parametrize("token", ["opaque", "a.b.c", "a.b.c.d.e", ""])
async def test_not_a_jwt(idp: DevAuthServer, token: str) -> None:
    async with verifier(idp) as v:
        with pytest.raises(MalformedToken):
            await v.verify(token)


async def test_crit_header_is_refused(idp: DevAuthServer) -> None:
    async with verifier(idp) as v:
        with pytest.raises(MalformedToken, match="crit"):
            await v.verify(forge(idp, headers={"crit": ["exp"]}))


# --------------------------------------------------------------------------- key rotation


async def test_rotation_fetches_the_new_key_once_for_1000_verifications(
    idp: DevAuthServer,
) -> None:
    old = await fetch(idp)
    async with verifier(idp, jwks_refresh_interval=0) as v:
        await v.verify(old)
        assert idp.jwks_requests == 1
        idp.rotate_key()
        new = await fetch(idp)
        results = await asyncio.gather(*(v.verify(new) for _ in range(1000)))
        assert {c.kid for c in results} == {idp.signing_key_id}
        assert idp.jwks_requests == 2  # one fetch, however many verifications
        await v.verify(old)  # the previous key is still published
        idp.rotate_key()  # now the key that signed `old` is gone from the JWKS
        await v.verify(await fetch(idp))  # a new kid: refetch, which drops the old key
        assert idp.jwks_requests == 3
        with pytest.raises(UnknownKey, match="rotated out"):
            await v.verify(old)


async def test_cold_start_1000_verifications_one_fetch(idp: DevAuthServer) -> None:
    token = await fetch(idp)
    async with verifier(idp, jwks_url=None) as v:
        await asyncio.gather(*(v.verify(token) for _ in range(1000)))
    assert (idp.metadata_requests, idp.jwks_requests) == (1, 1)


async def test_unknown_kids_are_rate_limited(idp: DevAuthServer) -> None:
    async with verifier(idp, jwks_refresh_interval=30) as v:
        await v.verify(await fetch(idp))
        for n in range(20):
            with pytest.raises(UnknownKey):
                await v.verify(forge(idp, headers={"kid": f"forged-{n}"}))
    assert idp.jwks_requests == 1


async def test_rotated_out_key_refused_after_max_age(idp: DevAuthServer) -> None:
    old = await fetch(idp)
    async with verifier(idp, jwks_max_age=0.2) as v:
        await v.verify(old)
        idp.rotate_key()
        idp.rotate_key()
        await v.verify(old)  # the cached set is young: still accepted
        await asyncio.sleep(0.3)
        with pytest.raises(UnknownKey):
            await v.verify(old)
    assert idp.jwks_requests == 2


async def test_stale_jwks_kept_when_refresh_fails(
    idp: DevAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = await fetch(idp)
    async with verifier(idp, jwks_max_age=0.1) as v:
        await v.verify(token)
        idp.jwks_override = {"not": "a jwks"}
        await asyncio.sleep(0.2)
        await v.verify(token)
    assert "using the cached keys" in caplog.text


async def test_closed_verifier(idp: DevAuthServer) -> None:
    v = verifier(idp)
    await v.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await v.verify(forge(idp))


def test_repr_and_bad_settings() -> None:
    v = JWTVerifier(issuer="https://idp.example.com", audience="api")
    assert repr(v) == "JWTVerifier(issuer='https://idp.example.com', audience=['api'])"
    with pytest.raises(ConfigurationError):
        JWTVerifier(issuer="http://idp.example.com", audience="api")
    with pytest.raises(ConfigurationError):
        JWTVerifier(issuer="https://idp.example.com", audience=[])
    with pytest.raises(ConfigurationError):
        JWTVerifier(issuer="https://idp.example.com", audience="api", leeway=-1)
