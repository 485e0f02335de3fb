"""DPoP (RFC 9449) end to end: ClientCredentials, BearerAuth and the dev server, real HTTP."""

from __future__ import annotations

import copy
import logging
import pickle
from typing import Any

import aiohttp
import httpx
import jwt
import pytest

import tokenfleet
import tokenfleet.aiohttp
import tokenfleet.httpx
from helpers import client_for
from tokenfleet import (
    ClientCredentials,
    ConfigurationError,
    DPoPDowngrade,
    DPoPKey,
    TokenManager,
    UseDPoPNonce,
)
from tokenfleet._client.dpop import ResourceDPoP
from tokenfleet.testing import DevAuthServer
from tokenfleet.testing._faults import Fault


def dpop_client(idp: DevAuthServer, **options: Any) -> ClientCredentials:
    return client_for(idp, **{"dpop": True, **options})


def private_scalar(key: DPoPKey) -> str:
    """The JWK ``d`` of a key: what must never appear anywhere."""
    return tokenfleet._jwt.dpop_key.b64url(
        key._key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    )


# ---------------------------------------------------------------------- the proof itself


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_a_proof_has_the_rfc_9449_shape_and_verifies_independently(alg: str) -> None:
    key = DPoPKey.generate(alg)
    proof = key.proof("post", "https://User:pw@IdP.example.com:443/token?x=1#frag", nonce="n1")
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == alg
    assert "d" not in header["jwk"]  # RFC 9449 §4.2: the public key only
    claims = jwt.decode(proof, jwt.PyJWK(header["jwk"], alg).key, algorithms=[alg])
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://idp.example.com/token"  # no query, fragment, userinfo
    assert claims["nonce"] == "n1" and "ath" not in claims
    assert isinstance(claims["iat"], int) and len(claims["jti"]) >= 22
    again = jwt.decode(
        key.proof("POST", "https://idp.example.com/token"), options={"verify_signature": False}
    )
    assert again["jti"] != claims["jti"]  # a fresh jti per proof


def test_key_repr_shows_no_key_material_and_refuses_pickling() -> None:
    key = DPoPKey.generate()
    assert repr(key) == f"DPoPKey(alg='ES256', jkt={key.thumbprint!r})"
    assert private_scalar(key) not in repr(key)
    with pytest.raises(ConfigurationError, match="cannot be pickled"):
        pickle.dumps(key)
    token = tokenfleet.Token(access_token="a", expires_at=2e9, issued_at=1e9, dpop_key=key)
    assert copy.deepcopy(token).dpop_key is key and copy.copy(key) is key


def test_key_from_pem_and_bad_input_are_typed_errors() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = DPoPKey.from_pem(tokenfleet.Secret(pem))
    assert key.alg == "ES256"
    with pytest.raises(ConfigurationError, match="not a PEM private key"):
        DPoPKey.from_pem("-----BEGIN NONSENSE-----")
    with pytest.raises(ConfigurationError, match="EdDSA"):
        DPoPKey.generate("HS256")
    with pytest.raises(ConfigurationError, match="cannot sign"):
        DPoPKey.from_pem(pem, alg="EdDSA")


# ---------------------------------------------------------------------- the token endpoint


async def test_dpop_client_gets_a_bound_token(idp: DevAuthServer) -> None:
    key = DPoPKey.generate("EdDSA")
    async with dpop_client(idp, dpop=key) as client:
        token = await client.fetch_token()
    assert token.token_type == "DPoP"
    assert token.authorization == f"DPoP {token.access_token}"
    assert token.dpop_key == key
    assert token.claims is not None and token.claims.extra["cnf"] == {"jkt": key.thumbprint}
    assert key.thumbprint in repr(token) and token.access_token not in repr(token)


async def test_dpop_true_makes_an_es256_key_per_client(idp: DevAuthServer) -> None:
    one, two = dpop_client(idp), dpop_client(idp)
    assert one.dpop is not None and two.dpop is not None
    assert one.dpop.alg == "ES256" and one.dpop != two.dpop
    # Different keys, one cache identity: processes share a token (and its key).
    assert one.cache_key() == two.cache_key() != dpop_client(idp, dpop=False).cache_key()
    await one.aclose()
    await two.aclose()


async def test_a_bearer_answer_to_a_dpop_request_is_a_typed_error(idp: DevAuthServer) -> None:
    idp.dpop.bind_tokens = False  # a server that ignores DPoP
    async with dpop_client(idp) as client:
        with pytest.raises(DPoPDowngrade, match="not bound to our key"):
            await client.fetch_token()
    async with dpop_client(idp, allow_dpop_downgrade=True) as client:
        token = await client.fetch_token()
    assert token.token_type == "Bearer" and token.dpop_key is None


async def test_token_endpoint_nonce_costs_exactly_one_retry_then_is_remembered(
    idp: DevAuthServer,
) -> None:
    idp.dpop.nonce_at_token = True
    async with dpop_client(idp) as client:
        await client.fetch_token()
        assert (idp.token_requests(), idp.dpop.token_nonce_challenges) == (2, 1)
        await client.fetch_token()  # the remembered nonce works the first time
        assert (idp.token_requests(), idp.dpop.token_nonce_challenges) == (3, 1)
        idp.dpop.rotate_nonce()  # the previous nonce is still accepted...
        await client.fetch_token()  # ...and the answer's DPoP-Nonce updates our memory
        idp.dpop.rotate_nonce()
        await client.fetch_token()
        assert (idp.token_requests(), idp.dpop.token_nonce_challenges) == (5, 1)
        idp.dpop.rotate_nonce()
        idp.dpop.rotate_nonce()  # now ours is too old: one challenge, one retry
        await client.fetch_token()
        assert (idp.token_requests(), idp.dpop.token_nonce_challenges) == (7, 2)


async def test_a_server_that_keeps_demanding_a_nonce_gets_one_retry_not_a_loop(
    idp: DevAuthServer,
) -> None:
    body = '{"error":"use_dpop_nonce","error_description":"nonce"}'
    idp.inject_fault(Fault(status=400, body=body, headers={"DPoP-Nonce": "always-the-same"}))
    async with dpop_client(idp) as client:
        with pytest.raises(UseDPoPNonce):
            await client.fetch_token()
    assert idp.token_requests() == 2


# ---------------------------------------------------------------------- resource requests


async def resource_status_aiohttp(idp: DevAuthServer, tokens: TokenManager) -> int:
    auth = tokenfleet.aiohttp.BearerAuth(tokens, origins=[idp.url])
    async with (
        aiohttp.ClientSession(middlewares=[auth]) as http,
        http.post(idp.resource_url + "/orders?page=2", json={"a": 1}) as response,
    ):
        return response.status


async def resource_status_httpx(idp: DevAuthServer, tokens: TokenManager) -> int:
    auth = tokenfleet.httpx.BearerAuth(tokens, origins=[idp.url])
    async with httpx.AsyncClient(auth=auth) as http:
        response = await http.post(idp.resource_url + "/orders?page=2", json={"a": 1})
        return response.status_code


CLIENTS = [resource_status_aiohttp, resource_status_httpx]


@pytest.mark.parametrize("send", CLIENTS)
async def test_bearer_auth_sends_a_dpop_token_with_a_fresh_proof(
    idp: DevAuthServer, send: Any
) -> None:
    async with TokenManager(dpop_client(idp)) as tokens:
        for _ in range(3):  # the dev server refuses a replayed proof: each one is fresh
            assert await send(idp, tokens) == 200
    assert idp.resource_requests == 3 and idp.token_requests() == 1
    assert idp.dpop.refused == {}


@pytest.mark.parametrize("send", CLIENTS)
async def test_resource_nonce_costs_exactly_one_retry_per_origin(
    idp: DevAuthServer, send: Any
) -> None:
    idp.dpop.nonce_at_resource = True
    async with TokenManager(dpop_client(idp)) as tokens:
        assert await send(idp, tokens) == 200
        assert (idp.resource_requests, idp.dpop.resource_nonce_challenges) == (2, 1)
    assert idp.token_requests() == 1  # the nonce retry keeps the token


async def test_the_nonce_is_remembered_per_origin_across_requests(idp: DevAuthServer) -> None:
    idp.dpop.nonce_at_resource = True
    async with TokenManager(dpop_client(idp)) as tokens:
        auth = tokenfleet.aiohttp.BearerAuth(tokens, origins=[idp.url])
        async with aiohttp.ClientSession(middlewares=[auth]) as http:
            for _ in range(5):
                async with http.get(idp.resource_url) as response:
                    assert response.status == 200
    assert (idp.resource_requests, idp.dpop.resource_nonce_challenges) == (6, 1)


@pytest.mark.parametrize("send", CLIENTS)
async def test_a_rotated_resource_nonce_is_followed_from_the_response_headers(
    idp: DevAuthServer, send: Any
) -> None:
    idp.dpop.nonce_at_resource = True
    async with TokenManager(dpop_client(idp)) as tokens:
        auth = (
            tokenfleet.aiohttp.BearerAuth(tokens, origins=[idp.url])
            if send is resource_status_aiohttp
            else tokenfleet.httpx.BearerAuth(tokens, origins=[idp.url])
        )
        statuses = []
        async with (
            aiohttp.ClientSession(middlewares=[auth]) as a,
            httpx.AsyncClient(auth=auth) as h,
        ):
            for rotations in (0, 1, 0, 2, 0, 1):
                for _ in range(rotations):
                    idp.dpop.rotate_nonce()
                if isinstance(auth, tokenfleet.aiohttp.BearerAuth):
                    async with a.get(idp.resource_url) as response:
                        statuses.append(response.status)
                else:
                    statuses.append((await h.get(idp.resource_url)).status_code)
    assert statuses == [200] * 6
    # 1 at the start; a single rotation is absorbed (the previous nonce is still good,
    # and the answer's DPoP-Nonce updates the memory); two in a row cost one more.
    assert idp.dpop.resource_nonce_challenges == 2
    assert idp.resource_requests == 8


@pytest.mark.parametrize("send", CLIENTS)
async def test_other_401s_keep_invalidate_and_retry_once(idp: DevAuthServer, send: Any) -> None:
    async with TokenManager(dpop_client(idp)) as tokens:
        first = await tokens.get_token()
        idp.revoke(first.access_token)
        assert await send(idp, tokens) == 200
        assert (await tokens.get_token()).access_token != first.access_token
    assert idp.token_requests() == 2 and idp.resource_requests == 2


async def test_a_dpop_token_is_refused_as_bearer_and_never_sent_as_one(
    idp: DevAuthServer,
) -> None:
    async with dpop_client(idp) as client:
        token = await client.fetch_token()
    async with aiohttp.ClientSession() as http:
        bearer = {"Authorization": f"Bearer {token.access_token}"}
        async with http.get(idp.resource_url, headers=bearer) as response:
            assert response.status == 401
        stripped = tokenfleet.Token(
            access_token=token.access_token,
            token_type="DPoP",
            expires_at=token.expires_at,
            issued_at=token.issued_at,
        )  # a DPoP token that lost its key: refused before anything is sent
        with pytest.raises(ConfigurationError, match="must not be sent as"):
            ResourceDPoP().apply({}, stripped, "GET", idp_url(idp))


def idp_url(idp: DevAuthServer) -> Any:
    from yarl import URL

    return URL(idp.resource_url)


async def test_the_resource_refuses_replay_wrong_htu_and_a_stolen_token(
    idp: DevAuthServer,
) -> None:
    async with dpop_client(idp) as client:
        token = await client.fetch_token()
    thief = DPoPKey.generate()
    url = idp.resource_url
    good = token.dpop_proof("GET", url)
    cases = {
        "fresh": (good, 200),
        "replayed": (good, 401),
        "wrong htu": (token.dpop_proof("GET", idp.url + "/elsewhere"), 401),
        "wrong ath": (token.dpop_key.proof("GET", url, access_token="other"), 401),  # type: ignore[union-attr]
        "stolen": (thief.proof("GET", url, access_token=token.access_token), 401),
    }
    async with aiohttp.ClientSession() as http:
        for name, (proof, status) in cases.items():
            headers = {"Authorization": token.authorization, "DPoP": proof}
            async with http.get(url, headers=headers) as response:
                assert response.status == status, name
                if status == 401:
                    assert response.headers["WWW-Authenticate"].startswith("DPoP "), name
    assert sum(idp.dpop.refused.values()) == 4


# ---------------------------------------------------------------------- no key in clear


async def test_no_private_key_in_any_repr_log_or_error(
    idp: DevAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = DPoPKey.generate()
    secret = private_scalar(key)
    idp.dpop.nonce_at_token = idp.dpop.nonce_at_resource = True
    shown: list[str] = []
    async with TokenManager(dpop_client(idp, dpop=key)) as tokens:
        token = await tokens.get_token()
        assert await resource_status_aiohttp(idp, tokens) == 200
        shown += [repr(token), str(token), repr(tokens), repr(tokens.source), repr(key)]
    idp.dpop.bind_tokens = False
    async with dpop_client(idp, dpop=key) as client:
        with pytest.raises(DPoPDowngrade) as caught:
            await client.fetch_token()
        shown += [str(caught.value), repr(caught.value)]
    with pytest.raises(ConfigurationError) as refused:
        pickle.dumps(token)
    shown.append(str(refused.value))
    text = "\n".join(shown) + caplog.text
    assert secret not in text
    assert "PRIVATE KEY" not in text


async def test_a_nonce_challenge_to_a_streamed_body_keeps_the_token(idp: DevAuthServer) -> None:
    idp.dpop.nonce_at_resource = True

    async def body() -> Any:
        yield b"streamed"

    async with TokenManager(dpop_client(idp)) as tokens:
        auth = tokenfleet.aiohttp.BearerAuth(tokens, origins=[idp.url])
        async with aiohttp.ClientSession(middlewares=[auth]) as http:
            async with http.post(idp.resource_url, data=body()) as response:
                assert response.status == 401  # not sent twice: the caller decides
            async with http.post(idp.resource_url, data=body()) as response:
                assert response.status == 200  # the remembered nonce, the same token
    assert idp.token_requests() == 1
    assert idp.dpop.resource_nonce_challenges == 1


async def test_the_token_endpoint_refuses_bad_proofs_and_the_client_says_so(
    idp: DevAuthServer,
) -> None:
    key = DPoPKey.generate()
    form = {
        "grant_type": "client_credentials",
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,  # client_secret_post
    }
    good = key.proof("POST", idp.token_url)
    cases = {
        "wrong htu": key.proof("POST", idp.resource_url),
        "wrong htm": key.proof("GET", idp.token_url),
        "old iat": key.proof("POST", idp.token_url, now=1_000_000_000),
        "not a jwt": "nonsense",
        "fresh": good,
        "replayed": good,
    }
    answers = {}
    async with aiohttp.ClientSession() as http:
        for name, proof in cases.items():
            headers = {"DPoP": proof}
            async with http.post(idp.token_url, data=form, headers=headers) as r:
                answers[name] = (r.status, (await r.json()).get("error"))
    refused = (400, "invalid_dpop_proof")
    assert answers == {**dict.fromkeys(cases, refused), "fresh": (200, None)}
    body = '{"error":"invalid_dpop_proof","error_description":"bad proof"}'
    idp.inject_fault(Fault(status=400, body=body), count=1)
    async with dpop_client(idp) as client:
        with pytest.raises(tokenfleet.InvalidDPoPProof, match="bad proof"):
            await client.fetch_token()
