"""Resource-server side: JWTVerifier and DPoPVerifier refuse each broken DPoP rule, typed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from helpers import client_for
from tokenfleet import (
    DPoPKey,
    DPoPKeyMismatch,
    DPoPMethodMismatch,
    DPoPNonceRequired,
    DPoPProofExpired,
    DPoPProofMissing,
    DPoPProofReplayed,
    DPoPSignatureInvalid,
    DPoPTokenHashMismatch,
    DPoPUrlMismatch,
    DPoPVerifier,
    JWTVerifier,
    MalformedDPoPProof,
    Token,
)
from tokenfleet._jwt.dpop_key import b64url
from tokenfleet.testing import DevAuthServer

URL = "https://api.example.com/orders"


@pytest.fixture
async def token(idp: DevAuthServer) -> Token:
    async with client_for(idp, dpop=True) as client:
        return await client.fetch_token()


@pytest.fixture
async def verifier(idp: DevAuthServer) -> AsyncIterator[JWTVerifier]:
    async with JWTVerifier(issuer=idp.issuer, audience=None) as verifier:
        yield verifier


async def test_a_bound_token_with_its_proof_verifies(token: Token, verifier: JWTVerifier) -> None:
    claims = await verifier.verify(
        token, dpop_proof=token.dpop_proof("GET", URL + "?q=1"), method="GET", url=URL + "?q=1"
    )
    assert claims.extra["cnf"]["jkt"] == token.dpop_key.thumbprint  # type: ignore[union-attr]


async def test_a_bound_token_without_a_proof_is_refused(
    token: Token, verifier: JWTVerifier
) -> None:
    with pytest.raises(DPoPProofMissing) as caught:
        await verifier.verify(token)
    assert caught.value.error == "invalid_token"


async def test_a_replayed_proof_is_refused(token: Token, verifier: JWTVerifier) -> None:
    proof = token.dpop_proof("GET", URL)
    await verifier.verify(token, dpop_proof=proof, method="GET", url=URL)
    with pytest.raises(DPoPProofReplayed):
        await verifier.verify(token, dpop_proof=proof, method="GET", url=URL)


async def test_wrong_htu_and_htm_are_refused(token: Token, verifier: JWTVerifier) -> None:
    with pytest.raises(DPoPUrlMismatch):
        proof = token.dpop_proof("GET", "https://api.example.com/other")
        await verifier.verify(token, dpop_proof=proof, method="GET", url=URL)
    with pytest.raises(DPoPMethodMismatch):
        await verifier.verify(
            token, dpop_proof=token.dpop_proof("GET", URL), method="POST", url=URL
        )


async def test_wrong_ath_is_refused(token: Token, verifier: JWTVerifier) -> None:
    assert token.dpop_key is not None
    proof = token.dpop_key.proof("GET", URL, access_token="some-other-token")
    with pytest.raises(DPoPTokenHashMismatch):
        await verifier.verify(token, dpop_proof=proof, method="GET", url=URL)


async def test_a_token_stolen_without_its_key_is_refused(
    token: Token, verifier: JWTVerifier
) -> None:
    thief = DPoPKey.generate()
    proof = thief.proof("GET", URL, access_token=token.access_token)
    with pytest.raises(DPoPKeyMismatch, match="without its key"):
        await verifier.verify(token.access_token, dpop_proof=proof, method="GET", url=URL)


# ---------------------------------------------------------------------- DPoPVerifier alone


def tamper(proof: str, *, header: dict[str, object] | None = None) -> str:
    import json

    head, payload, signature = proof.split(".")
    if header is not None:
        head = b64url(json.dumps(header).encode())
    return f"{head}.{payload}.{signature}"


def test_old_and_future_proofs_are_refused() -> None:
    now = 1_800_000_000.0
    verifier = DPoPVerifier(max_age=60, leeway=5, clock=lambda: now)
    key = DPoPKey.generate("EdDSA")
    verifier.verify(key.proof("GET", URL, now=now - 60), method="GET", url=URL)
    for when in (now - 70, now + 10):
        with pytest.raises(DPoPProofExpired):
            verifier.verify(key.proof("GET", URL, now=when), method="GET", url=URL)


def test_signature_typ_and_private_jwk_are_checked() -> None:
    verifier = DPoPVerifier()
    key = DPoPKey.generate()
    proof = key.proof("GET", URL)
    forged = proof[:-4] + ("AAAA" if not proof.endswith("AAAA") else "BBBB")
    with pytest.raises(DPoPSignatureInvalid):
        verifier.verify(forged, method="GET", url=URL)
    with pytest.raises(MalformedDPoPProof, match="typ"):
        verifier.verify(
            tamper(proof, header={"typ": "JWT", "alg": "ES256", "jwk": key.public_jwk}),
            method="GET",
            url=URL,
        )
    private = {**key.public_jwk, "d": "AAAA"}
    with pytest.raises(MalformedDPoPProof, match="public key"):
        verifier.verify(
            tamper(proof, header={"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
            method="GET",
            url=URL,
        )
    for junk in (None, "", "a.b", "x" * 9000, f"{proof}, {proof}"):
        with pytest.raises(MalformedDPoPProof):
            verifier.verify(junk, method="GET", url=URL)


def test_a_demanded_nonce_is_given_with_the_error_and_then_accepted() -> None:
    verifier = DPoPVerifier(require_nonce=True)
    key = DPoPKey.generate()
    with pytest.raises(DPoPNonceRequired) as caught:
        verifier.verify(key.proof("GET", URL), method="GET", url=URL)
    assert caught.value.error == "use_dpop_nonce" and caught.value.nonce == verifier.nonce
    jkt = verifier.verify(key.proof("GET", URL, nonce=caught.value.nonce), method="GET", url=URL)
    assert jkt == key.thumbprint


def test_the_replay_cache_is_bounded() -> None:
    verifier = DPoPVerifier(replay_cache_size=100)
    key = DPoPKey.generate("EdDSA")
    for _ in range(300):
        verifier.verify(key.proof("GET", URL), method="GET", url=URL)
    assert len(verifier._seen) <= 100


def test_workers_sharing_a_nonce_key_accept_each_others_nonces() -> None:
    now = [1_800_000_000.0]
    one, two = (
        DPoPVerifier(require_nonce=True, nonce_key=b"n" * 32, clock=lambda: now[0])
        for _ in range(2)
    )
    other = DPoPVerifier(require_nonce=True, nonce_key=b"m" * 32, clock=lambda: now[0])
    key = DPoPKey.generate()
    nonce = one.nonce
    assert two.nonce == nonce != other.nonce
    two.verify(key.proof("GET", URL, nonce=nonce, now=now[0]), method="GET", url=URL)
    with pytest.raises(DPoPNonceRequired):
        other.verify(key.proof("GET", URL, nonce=nonce, now=now[0]), method="GET", url=URL)
    now[0] += 300  # one rotation later the previous nonce is still accepted...
    two.verify(key.proof("GET", URL, nonce=nonce, now=now[0]), method="GET", url=URL)
    now[0] += 300  # ...two rotations later it is not
    with pytest.raises(DPoPNonceRequired) as caught:
        one.verify(key.proof("GET", URL, nonce=nonce, now=now[0]), method="GET", url=URL)
    assert caught.value.nonce == two.nonce != nonce
