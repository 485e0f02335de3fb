"""ClientCredentials end to end against the real dev authorization server on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from functools import partial
from pathlib import Path

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
import tokenfleet
from helpers import pem_pair
from tokenfleet import (
    ClientCredentials,
    ConfigurationError,
    FetchTimeout,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    InvalidTokenResponse,
    RateLimited,
    Retry,
    ServerError,
    TransportError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokenfleet.testing import DevAuthServer, Fault, make_test_pki

FAST = Retry(attempts=3, backoff=0.05, max_backoff=0.2)


# every client in this file retries fast unless a test says otherwise
client_for = partial(helpers.client_for, retry=FAST)


def claims(token: tokenfleet.Token) -> dict[str, object]:
    return jwt.decode(token.access_token, options={"verify_signature": False})


# --------------------------------------------------------------------------- auth methods


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "client_secret_jwt"]
)
async def test_secret_methods(idp: DevAuthServer, method: str) -> None:
    async with client_for(idp, auth_method=method, scopes=["a", "b"]) as client:
        token = await client.fetch_token()
    assert token.token_type == "Bearer"
    assert token.scopes == ("a", "b")
    assert claims(token)["client_id"] == idp.client_id
    assert idp.token_requests() == 1


async def test_basic_encodes_id_and_secret_before_base64(idp: DevAuthServer) -> None:
    """RFC 6749 §2.3.1: a secret with ':', '%', '+', ' ', '/' and non-ASCII still works."""
    idp.register_client("svc:odd id/é", "a:b%c+d e/é")
    async with ClientCredentials(
        idp.token_url, client_id="svc:odd id/é", client_secret="a:b%c+d e/é"
    ) as client:
        token = await client.fetch_token()
    assert claims(token)["sub"] == "svc:odd id/é"


@pytest.mark.parametrize(
    ("make_key", "alg"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "PS256"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
    ],
)
async def test_private_key_jwt(idp: DevAuthServer, make_key: object, alg: str) -> None:
    private, public = pem_pair(make_key())  # type: ignore[operator]
    idp.register_client("pk-client", public_key=public, auth_methods=["private_key_jwt"])
    async with ClientCredentials(
        idp.token_url,
        client_id="pk-client",
        auth_method="private_key_jwt",
        private_key=private,
        signing_alg=alg,
        key_id="key-1",
    ) as client:
        first = await client.fetch_token()
        second = await client.fetch_token()  # a fresh assertion (new jti) each time
    assert first.access_token != second.access_token
    assert idp.issued_tokens("pk-client") == 2


async def test_private_key_jwt_wrong_key_is_invalid_client(idp: DevAuthServer) -> None:
    _, public = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    other, _ = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    idp.register_client("pk-client", public_key=public, auth_methods=["private_key_jwt"])
    async with ClientCredentials(
        idp.token_url, client_id="pk-client", auth_method="private_key_jwt", private_key=other
    ) as client:
        with pytest.raises(InvalidClient) as info:
            await client.fetch_token()
    assert info.value.status == 401


async def test_tls_client_auth(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path, client_cn="mtls-client")
    async with DevAuthServer(ssl_context=pki.server_ssl_context) as idp:
        idp.register_client("mtls-client", auth_methods=["tls_client_auth"])
        async with ClientCredentials(
            idp.token_url,
            client_id="mtls-client",
            auth_method="tls_client_auth",
            ssl_context=pki.client_ssl_context,
        ) as client:
            token = await client.fetch_token()
        assert claims(token)["sub"] == "mtls-client"
        async with ClientCredentials(
            idp.token_url,
            client_id="mtls-client",
            auth_method="tls_client_auth",
            ssl_context=pki.client_context(with_certificate=False),
            retry=Retry(attempts=1),
        ) as anonymous:
            with pytest.raises((InvalidClient, TransportError)):
                await anonymous.fetch_token()


async def test_public_client_none(idp: DevAuthServer) -> None:
    idp.register_client("public-app", auth_methods=["none"])
    async with ClientCredentials(idp.token_url, client_id="public-app", auth_method="none") as c:
        assert claims(await c.fetch_token())["sub"] == "public-app"


def test_auth_method_needs_its_credential() -> None:
    url = "https://idp.example.com/token"
    with pytest.raises(ConfigurationError, match="needs client_secret"):
        ClientCredentials(url, client_id="x")
    with pytest.raises(ConfigurationError, match="needs private_key"):
        ClientCredentials(url, client_id="x", auth_method="private_key_jwt")
    with pytest.raises(ConfigurationError, match="not an unencrypted PEM"):
        ClientCredentials(url, client_id="x", auth_method="private_key_jwt", private_key="junk")
    with pytest.raises(ConfigurationError, match="needs ssl_context"):
        ClientCredentials(url, client_id="x", auth_method="tls_client_auth")
    with pytest.raises(ConfigurationError, match="unknown auth_method"):
        ClientCredentials(url, client_id="x", client_secret="s", auth_method="magic")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="signing_alg"):
        ec_pem, _ = pem_pair(ec.generate_private_key(ec.SECP256R1()))
        ClientCredentials(
            url,
            client_id="x",
            auth_method="private_key_jwt",
            private_key=ec_pem,
            signing_alg="RS256",
        )
    with pytest.raises(ConfigurationError, match="unencrypted"):
        ClientCredentials("http://idp.example.com/token", client_id="x", client_secret="s")


# --------------------------------------------------------------------------- parameters


async def test_audience_resource_and_scopes_reach_the_server(idp: DevAuthServer) -> None:
    async with client_for(idp, scopes="a b a", audience="api://orders") as client:
        token = await client.fetch_token()
        assert claims(token)["aud"] == "api://orders"
        assert token.scopes == ("a", "b")
        other = await client.fetch_token(scopes=["c"])
        assert other.scopes == ("c",)
    async with client_for(idp, resource=["https://r1.example", "https://r2.example"]) as client:
        aud = claims(await client.fetch_token())["aud"]
    assert set(aud if isinstance(aud, list) else [aud]) == {
        "https://r1.example",
        "https://r2.example",
    }


async def test_missing_expires_in_and_scope_use_defaults(idp: DevAuthServer) -> None:
    idp.opaque_tokens = True  # a JWT would supply exp and scope (see test_jwt_client.py)
    idp.include_expires_in = False
    idp.include_scope = False
    async with client_for(idp, scopes=["x"], default_lifetime=123.0) as client:
        token = await client.fetch_token()
    assert token.lifetime == pytest.approx(123.0)
    assert token.scopes == ("x",)


async def test_token_type_normalised_or_kept(idp: DevAuthServer) -> None:
    async with client_for(idp) as client:
        idp.token_type = "bEaReR"
        assert (await client.fetch_token()).token_type == "Bearer"
        idp.token_type = "DPoP"
        assert (await client.fetch_token()).authorization.startswith("DPoP ")


async def test_expires_at_is_measured_from_before_the_request(idp: DevAuthServer) -> None:
    idp.token_lifetime = 60
    idp.latency = 0.2
    async with client_for(idp) as client:
        before = time.time()
        token = await client.fetch_token()
    assert before <= token.issued_at <= before + 0.1
    assert token.expires_at == pytest.approx(token.issued_at + 60)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("setup", "cls"),
    [
        (lambda idp: idp.register_client("c", "right"), InvalidClient),
        (lambda idp: idp.register_client("c", "s", scopes=["only"]), InvalidScope),
        (lambda idp: idp.register_client("c", "s", grant_allowed=False), UnauthorizedClient),
        (lambda idp: idp.register_client("c", "s", audiences=["api://other"]), InvalidTarget),
    ],
)
async def test_server_refusals_map_to_classes(
    idp: DevAuthServer, setup: object, cls: type
) -> None:
    setup(idp)  # type: ignore[operator]
    async with ClientCredentials(
        idp.token_url,
        client_id="c",
        client_secret="s",
        scopes=["x"],
        audience="api://x",
        retry=FAST,
    ) as client:
        with pytest.raises(cls) as info:
            await client.fetch_token()
    assert info.value.error  # the RFC 6749 §5.2 code is an attribute
    assert idp.token_requests() == 1  # 4xx: never retried


@pytest.mark.parametrize(
    ("code", "cls"),
    [("invalid_request", InvalidRequest), ("unsupported_grant_type", UnsupportedGrantType)],
)
async def test_injected_error_codes(idp: DevAuthServer, code: str, cls: type) -> None:
    idp.inject_fault(Fault(status=400, body=f'{{"error": "{code}"}}'), count=1)
    async with client_for(idp) as client:
        with pytest.raises(cls):
            await client.fetch_token()


async def test_5xx_is_retried_with_backoff_then_succeeds(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(status=503), count=2)
    async with client_for(idp, retry=Retry(attempts=3, backoff=0.2, max_backoff=0.2)) as c:
        await c.fetch_token()
    arrivals = [r.arrival for r in idp.requests_log]
    assert [r.status for r in idp.requests_log] == [503, 503, 200]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap < 0.5 for gap in gaps)  # full jitter: each wait in [0, 0.2]


async def test_5xx_gives_up_after_attempts(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(status=502))
    async with client_for(idp) as client:
        with pytest.raises(ServerError) as info:
            await client.fetch_token()
    assert info.value.status == 502
    assert idp.token_requests() == 3


async def test_429_honours_retry_after(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(status=429, retry_after=1), count=1)
    async with client_for(idp) as client:
        await client.fetch_token()
    first, second = idp.requests_log
    assert second.arrival - first.arrival >= 0.95


async def test_429_with_too_long_retry_after_gives_up_at_once(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(status=429, retry_after=3600))
    async with client_for(idp) as client:
        started = time.monotonic()
        with pytest.raises(RateLimited) as info:
            await client.fetch_token()
    assert info.value.retry_after == pytest.approx(3600, abs=2)
    assert time.monotonic() - started < 1
    assert idp.token_requests() == 1


async def test_dropped_connection_is_a_retried_transport_error(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(drop_connection=True), count=1)
    async with client_for(idp) as client:
        await client.fetch_token()
    assert idp.token_requests() == 2
    idp.inject_fault(Fault(drop_connection=True))
    async with client_for(idp) as client:
        with pytest.raises(TransportError):
            await client.fetch_token()


async def test_unreachable_server_is_transport_error() -> None:
    async with DevAuthServer() as idp:
        url = idp.token_url
    async with ClientCredentials(url, client_id="x", client_secret="y", retry=FAST) as client:
        with pytest.raises(TransportError, match="could not reach"):
            await client.fetch_token()


async def test_total_timeout_covers_retries(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(delay=5))
    async with client_for(idp, timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(FetchTimeout):
            await client.fetch_token()
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(status=200, malformed_json=True), "not a JSON object"),
        (Fault(status=200, body="<html>login</html>", content_type="text/html"), "HTML"),
        (Fault(status=200, body='{"token_type": "bearer"}'), "access_token"),
        (
            Fault(
                status=200, body='{"access_token": "a", "token_type": "bearer", "expires_in": -1}'
            ),
            "plausible",
        ),
        (Fault(status=200, body=b"{" + b" " * (2 * 1024 * 1024) + b"}"), "bytes"),
    ],
)
async def test_malformed_responses(idp: DevAuthServer, fault: Fault, message: str) -> None:
    idp.inject_fault(fault)
    async with client_for(idp) as client:
        with pytest.raises(InvalidTokenResponse, match=message):
            await client.fetch_token()


async def test_slow_body_still_parses(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(status=200, slow_body=0.3), count=1)
    async with client_for(idp) as client:
        token = await client.fetch_token()
    assert token.access_token


# --------------------------------------------------------------------------- lifecycle


async def test_user_session_is_used_and_not_closed(idp: DevAuthServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with client_for(idp, session=session) as client:
            await client.fetch_token()
        assert not session.closed


async def test_closed_client_refuses(idp: DevAuthServer) -> None:
    client = client_for(idp)
    await client.fetch_token()
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(ConfigurationError, match="closed"):
        await client.fetch_token()


async def test_concurrent_fetches_share_one_session(idp: DevAuthServer) -> None:
    async with client_for(idp) as client:
        tokens = await asyncio.gather(*(client.fetch_token() for _ in range(20)))
    assert len({t.access_token for t in tokens}) == 20  # no caching at this layer


def test_repr_shows_no_secret() -> None:
    client = ClientCredentials(
        "https://idp.example.com/token", client_id="svc", client_secret="hunter2-secret"
    )
    assert "hunter2" not in repr(client)
    assert "svc" in repr(client)


# --------------------------------------------------------------------------- fuzzing

_statuses = st.sampled_from([200, 201, 204, 400, 401, 403, 404, 429, 500, 502, 503])
_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.dictionaries(
        st.sampled_from(
            [
                "access_token",
                "token_type",
                "expires_in",
                "scope",
                "error",
                "error_description",
                "x",
            ]
        ),
        st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=30), st.booleans()),
        max_size=6,
    ).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=60)
@given(
    status=_statuses,
    body=_bodies,
    content_type=st.sampled_from(["application/json", "text/html", "text/plain", ""]),
    retry_after=st.one_of(
        st.none(), st.sampled_from(["0", "1", "-5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
    ),
)
def test_any_server_answer_gives_token_or_typed_error(
    threaded_idp: DevAuthServer,
    status: int,
    body: bytes,
    content_type: str,
    retry_after: str | None,
) -> None:
    threaded_idp.clear_faults()
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    threaded_idp.inject_fault(
        Fault(status=status, body=body, content_type=content_type, headers=headers)
    )

    async def fetch() -> None:
        async with client_for(
            threaded_idp, retry=Retry(attempts=2, backoff=0, max_retry_after=0.01), timeout=2
        ) as client:
            try:
                token = await client.fetch_token()
            except tokenfleet.TokenFleetError:
                return
            assert token.access_token

    asyncio.run(fetch())


async def test_retry_after_beyond_the_total_timeout_fails_fast(idp: DevAuthServer) -> None:
    idp.inject_fault(Fault(status=429, retry_after=20))
    async with client_for(idp, timeout=2) as client:
        started = time.monotonic()
        with pytest.raises(RateLimited):  # the real error, not a FetchTimeout 2 s later
            await client.fetch_token()
    assert time.monotonic() - started < 1
