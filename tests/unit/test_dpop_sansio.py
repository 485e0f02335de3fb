"""DPoP's sans-I/O parts: thumbprints, htu, challenges, nonce memory, the store codec."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tokenfleet import AesGcmCipher, DPoPKey, DPoPKeyNotSealed, DPoPProofError, DPoPVerifier, Token
from tokenfleet._client.dpop import NonceMemory, dpop_challenge
from tokenfleet._jwt.dpop_key import jwk_thumbprint, normalize_htu, token_hash
from tokenfleet.stores import _codec


def test_thumbprint_matches_rfc_7638_section_3_1() -> None:
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
        "65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNL"
        "yrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJ"
        "zKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ath_is_base64url_sha256_of_the_token() -> None:
    # RFC 9449 §7.1's example token and its ath
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


@pytest.mark.parametrize(
    ("url", "htu"),
    [
        ("https://Server.Example.com/token?x=1#f", "https://server.example.com/token"),
        ("https://u:p@server.example.com:443/a/b", "https://server.example.com/a/b"),
        ("http://127.0.0.1:80", "http://127.0.0.1/"),
        ("http://127.0.0.1:8080/r", "http://127.0.0.1:8080/r"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
    ],
)
def test_htu_leaves_out_query_fragment_userinfo_and_default_ports(url: str, htu: str) -> None:
    assert normalize_htu(url) == htu


def test_challenge_parsing_takes_the_dpop_challenge_only() -> None:
    both = (
        'Bearer realm="x", error="invalid_token", DPoP algs="ES256 EdDSA", error="use_dpop_nonce"'
    )
    assert dpop_challenge(both) == {"algs": "ES256 EdDSA", "error": "use_dpop_nonce"}
    assert dpop_challenge('Bearer error="use_dpop_nonce"') is None
    assert dpop_challenge("DPoP") == {}
    assert dpop_challenge('dpop error="a \\"quoted\\" one"') == {"error": 'a "quoted" one'}


@given(st.text(max_size=300))
def test_challenge_parsing_never_raises(header: str) -> None:
    result = dpop_challenge(header)
    assert result is None or isinstance(result, dict)


def test_nonce_memory_is_bounded_and_refuses_bad_nonces() -> None:
    memory = NonceMemory(limit=3)
    assert memory.observe("a", "n1") and not memory.observe("a", "n1")
    for bad in ("", 'with"quote', "x" * 600, "sp ace", None):
        assert not memory.observe("b", bad)
    for server in "bcdef":
        memory.observe(server, "n")
    assert len(memory) == 3 and memory.get("a") is None and memory.get("f") == "n"


def token_with(key: DPoPKey | None) -> Token:
    return Token(access_token="at", token_type="DPoP", expires_at=2e9, issued_at=1e9, dpop_key=key)


def test_the_codec_seals_the_key_and_refuses_it_in_clear() -> None:
    key = DPoPKey.generate("EdDSA")
    cipher = AesGcmCipher(b"c" * 32)
    stored = _codec.encode(token_with(key), 2e9, cipher=cipher, key="k")
    assert key._export() not in stored and key._export()[-32:] not in stored
    assert _codec.decode(stored, cipher=cipher, key="k") == token_with(key)
    assert _codec.decode(stored, cipher=cipher, key="other") is None
    with pytest.raises(DPoPKeyNotSealed):
        _codec.encode(token_with(key), 2e9, key="k")
    # A clear entry holding a key (not written by tokenfleet) is refused on read.
    forged = _codec._encoder.encode(
        _codec._Envelope(1, "x", 2e9, _codec._encoder.encode(token_with(key)))
    )
    assert _codec.decode_entry(forged, key="k") != (token_with(key), 2e9)


@given(st.text(max_size=400), st.sampled_from(["GET", "POST"]), st.text(max_size=50))
def test_the_verifier_gives_a_typed_error_for_any_proof(proof: str, method: str, url: str) -> None:
    verifier = DPoPVerifier()
    with pytest.raises(DPoPProofError):
        verifier.verify(proof, method=method, url="https://a.example/" + url)


_claim = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30), st.just([])
)


@given(htm=_claim, htu=_claim, iat=_claim, jti=_claim, ath=_claim, nonce=_claim)
@example(htm="GET", htu="http://[", iat=0, jti="j", ath="a", nonce="n")  # yarl: ValueError
@example(htm="GET", htu="http://a:99999/", iat=0, jti="j", ath="a", nonce="n")
def test_a_signed_proof_with_hostile_claims_gives_a_typed_error_or_passes(
    htm: object, htu: object, iat: object, jti: object, ath: object, nonce: object
) -> None:
    import json

    from tokenfleet._jwt.dpop_key import b64url

    key = SIGNER
    claims = {"htm": htm, "htu": htu, "iat": iat, "jti": jti, "ath": ath, "nonce": nonce}
    signing_input = key._header + b64url(json.dumps(claims).encode())
    proof = signing_input + "." + b64url(key._sign(signing_input.encode()))
    with pytest.raises(DPoPProofError):  # the nonce can never match: always refused
        DPoPVerifier(require_nonce=True).verify(
            proof, method="GET", url="https://a.example/x", access_token="t"
        )


SIGNER = DPoPKey.generate("EdDSA")


@pytest.mark.parametrize("member", ["kty", "alg"])
@pytest.mark.parametrize("value", [[], {}, ["EC"]])
def test_a_proof_jwk_with_a_non_string_kty_or_alg_is_a_malformed_proof(
    member: str, value: object
) -> None:
    # The jwk is the client's (untrusted) input: an unhashable kty/alg was a TypeError.
    import base64
    import json

    key = DPoPKey.generate("ES256")
    header_b64, payload_b64, signature = key.proof("POST", "https://rs.example/x").split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    header["jwk"][member] = value
    forged = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(DPoPProofError):
        DPoPVerifier().verify(
            f"{forged}.{payload_b64}.{signature}", method="POST", url="https://rs.example/x"
        )


@pytest.mark.parametrize("until", [float("nan"), float("inf")])
def test_a_cooldown_entry_with_a_non_finite_end_is_unreadable(until: float) -> None:
    # A shared store is not trusted: a planted NaN end compared false with every clock
    # reading, so it never ended (the max_backoff bound did not catch it either).
    assert _codec.decode_cooldown(_codec.encode_cooldown(until, "planted")) is None
    assert _codec.decode_cooldown(_codec.encode_cooldown(1e9, "HTTP 429")) is not None


@pytest.mark.parametrize("url", ["http://[/x", "https://a:99999/x", None])
def test_an_unparseable_request_url_is_a_configuration_error(url: object) -> None:
    # A resource server builds the URL from the request (its Host header is the
    # client's): yarl's ValueError or TypeError must not escape as such.
    from tokenfleet import ConfigurationError

    proof = SIGNER.proof("GET", "https://a.example/x")
    with pytest.raises(ConfigurationError, match="url"):
        DPoPVerifier().verify(proof, method="GET", url=url)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="url"):
        SIGNER.proof("GET", url)  # type: ignore[arg-type]


def test_a_request_method_that_is_not_a_string_is_a_configuration_error() -> None:
    from tokenfleet import ConfigurationError

    proof = SIGNER.proof("GET", "https://a.example/x")
    with pytest.raises(ConfigurationError, match="method"):
        DPoPVerifier().verify(proof, method=None, url="https://a.example/x")  # type: ignore[arg-type]
