"""The sans-I/O core: request building, parsing, cache keys, expiry math. No network."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenfleet import (
    ConfigurationError,
    InvalidClient,
    InvalidScope,
    InvalidTarget,
    InvalidTokenResponse,
    OAuthError,
    RateLimited,
    ServerError,
    Token,
    TokenFleetError,
)
from tokenfleet._client import request, response
from tokenfleet._exceptions import (
    InvalidGrant,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokenfleet._manager import policy


def parse(body: object, **kw: object) -> Token:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    args: dict[str, object] = {
        "requested_scopes": ("a",),
        "issued_at": 1000.0,
        "default_lifetime": 60.0,
    }
    args.update(kw)
    return response.parse_token_response(raw, **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- scopes, form


def test_scopes_dedup_keep_order_and_split() -> None:
    assert request.normalize_scopes(["b", "a", "b", "c d"]) == ("b", "a", "c", "d")
    assert request.normalize_scopes("x  y x") == ("x", "y")
    assert request.normalize_scopes(None) == ()


@pytest.mark.parametrize("bad", ['"quoted"', "back\\slash", "é"])
def test_scopes_reject_rfc6749_forbidden_chars(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="RFC 6749"):
        request.normalize_scopes([bad])


def test_scopes_reject_non_strings() -> None:
    with pytest.raises(ConfigurationError, match="must be strings"):
        request.normalize_scopes([1])  # type: ignore[list-item]


def test_build_form_all_parameters() -> None:
    form = request.build_form(
        ("a", "b"), "api://x", ("https://r1", "https://r2"), {"tenant": "t1"}
    )
    assert form == [
        ("grant_type", "client_credentials"),
        ("scope", "a b"),
        ("audience", "api://x"),
        ("resource", "https://r1"),
        ("resource", "https://r2"),
        ("tenant", "t1"),
    ]
    assert request.encode_form([("scope", "a b"), ("x", "é&=")]) == b"scope=a+b&x=%C3%A9%26%3D"


def test_resources_must_be_absolute_without_fragment() -> None:
    assert request.normalize_resources("https://a") == ("https://a",)
    for bad in ("relative/path", "https://a#frag"):
        with pytest.raises(ConfigurationError, match="RFC 8707"):
            request.normalize_resources(bad)


def test_an_unparseable_resource_is_a_configuration_error() -> None:
    # urlsplit raises ValueError("Invalid IPv6 URL") on it: it must not escape as such.
    with pytest.raises(ConfigurationError, match="RFC 8707"):
        request.normalize_resources("https://[::1/api")


@pytest.mark.parametrize("url", ["file:///tmp/tokens%00x", "file:///tmp/a%00b/c"])
def test_a_file_store_path_with_a_nul_byte_is_a_configuration_error(url: str) -> None:
    from tokenfleet import store_from_url

    with pytest.raises(ConfigurationError, match="NUL"):
        store_from_url(url)


def test_extra_params_cannot_shadow_ours() -> None:
    with pytest.raises(ConfigurationError, match="client_secret"):
        request.check_extra_params({"client_secret": "x"})


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example.com/token",
        "http://127.0.0.1:8080/token",
        "http://localhost/t",
        "http://[::1]:9/t",
    ],
)
def test_token_url_allowed(url: str) -> None:
    assert request.check_endpoint_url(url) == url


def test_token_url_plain_http_refused_unless_allowed() -> None:
    with pytest.raises(ConfigurationError, match="unencrypted"):
        request.check_endpoint_url("http://idp.example.com/token")
    assert request.check_endpoint_url("http://idp.example.com/t", allow_insecure_http=True)
    with pytest.raises(ConfigurationError, match="absolute"):
        request.check_endpoint_url("ftp://x/y")


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/token",  # urlsplit: "Invalid IPv6 URL"
        "https://\u2100.com/token",  # urlsplit: invalid under NFKC normalization
        "https://exa\u00admple.com/token",  # yarl (every later use of the URL) refuses it
    ],
)
def test_token_url_unparseable_is_a_configuration_error(url: str) -> None:
    # Also what a discovery document's token_endpoint goes through: a server's value.
    with pytest.raises(ConfigurationError, match="not a valid URL"):
        request.check_endpoint_url(url)


# --------------------------------------------------------------------------- responses


def test_parse_minimal_response() -> None:
    token = parse({"access_token": "abc", "token_type": "bearer"})
    assert token.token_type == "Bearer"
    assert token.expires_at == 1060.0  # default lifetime
    assert token.scopes == ("a",)  # requested scopes when the server says nothing


def test_parse_full_response_keeps_extras() -> None:
    token = parse(
        {
            "access_token": "abc",
            "token_type": "DPoP",
            "expires_in": "300",
            "scope": "x y x",
            "id_token": "i",
        }
    )
    assert token.token_type == "DPoP"
    assert token.expires_at == 1300.0
    assert token.scopes == ("x", "y")
    assert token.extra == {"id_token": "i"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b"{not json", "not a JSON object"),
        (b"<html><body>Login</body></html>", "HTML page"),
        ({"token_type": "bearer"}, "access_token"),
        ({"access_token": "", "token_type": "bearer"}, "empty access_token"),
        ({"access_token": "a b", "token_type": "bearer"}, "Authorization header"),
        ({"access_token": "ab\r\nX-Evil: 1", "token_type": "bearer"}, "Authorization header"),
        ({"access_token": 12, "token_type": "bearer"}, "access_token"),
        ({"access_token": "a", "token_type": "bearer", "expires_in": -5}, "plausible"),
        ({"access_token": "a", "token_type": "bearer", "expires_in": 0}, "plausible"),
        ({"access_token": "a", "token_type": "bearer", "expires_in": 1e12}, "plausible"),
        ({"access_token": "a", "token_type": "bearer", "expires_in": "soon"}, "not a number"),
        ({"access_token": "a", "token_type": "bearer", "expires_in": True}, "expires_in"),
        ({"access_token": "a"}, "token_type"),
    ],
)
def test_parse_rejects_bad_responses(body: object, message: str) -> None:
    with pytest.raises(InvalidTokenResponse, match=message):
        parse(body)


def test_parse_html_by_content_type() -> None:
    with pytest.raises(InvalidTokenResponse, match="HTML"):
        parse(b'{"a": 1}', content_type="text/html; charset=utf-8")


@given(st.binary(max_size=300))
def test_parse_arbitrary_bytes_gives_token_or_typed_error(body: bytes) -> None:
    with contextlib.suppress(TokenFleetError):
        parse(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "access_token": json_values,
            "token_type": json_values,
            "expires_in": json_values,
            "scope": json_values,
        },
    )
)
def test_parse_arbitrary_json_gives_token_or_typed_error(body: dict[str, object]) -> None:
    try:
        token = parse(json.dumps(body).encode())
    except TokenFleetError:
        return
    assert token.access_token
    assert token.expires_at > token.issued_at


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("invalid_request", InvalidRequest),
        ("invalid_client", InvalidClient),
        ("invalid_grant", InvalidGrant),
        ("unauthorized_client", UnauthorizedClient),
        ("unsupported_grant_type", UnsupportedGrantType),
        ("invalid_scope", InvalidScope),
        ("invalid_target", InvalidTarget),
        ("vendor_specific", OAuthError),
    ],
)
def test_error_codes_map_to_classes(code: str, cls: type[OAuthError]) -> None:
    body = json.dumps({"error": code, "error_description": "why", "error_uri": "https://e"})
    error = response.parse_error_response(
        body.encode(), status=400, content_type="application/json", retry_after=None
    )
    assert type(error) is cls
    assert (error.error, error.error_description, error.error_uri, error.status) == (
        code,
        "why",
        "https://e",
        400,
    )


def test_error_statuses() -> None:
    def err(status: int, body: bytes = b"", retry_after: float | None = None) -> Exception:
        return response.parse_error_response(
            body, status=status, content_type="text/plain", retry_after=retry_after
        )

    limited = err(429, retry_after=7)
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 7
    assert isinstance(err(503), ServerError)
    assert isinstance(err(401), InvalidClient)
    assert type(err(403)) is OAuthError
    assert isinstance(err(502, b"<html>bad gateway</html>"), ServerError)


def test_error_description_is_scrubbed_and_bounded() -> None:
    body = json.dumps(
        {"error": "invalid_client", "error_description": "bad secret s3cr3t\x00" + "x" * 999}
    )
    error = response.parse_error_response(
        body.encode(),
        status=401,
        content_type="application/json",
        retry_after=None,
        scrub=("s3cr3t",),
    )
    assert "s3cr3t" not in str(error)
    assert "s3cr3t" not in (error.error_description or "")
    assert len(str(error)) < 400


def test_retry_after_forms() -> None:
    assert response.parse_retry_after("120", now=0) == 120.0
    assert response.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert response.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert response.parse_retry_after("garbage", now=0) is None
    assert response.parse_retry_after(None, now=0) is None


# --------------------------------------------------------------------------- cache key


def key(**kw: object) -> str:
    args: dict[str, object] = {
        "token_url": "https://idp/token",
        "client_id": "svc:orders/{x}",
        "auth_method": "client_secret_basic",
        "credential": "fp1",
        "scopes": ("a", "b"),
        "audience": None,
        "resources": (),
        "extra_params": {},
    }
    args.update(kw)
    return request.cache_key(**args)  # type: ignore[arg-type]


def test_cache_key_shape() -> None:
    k = key()
    assert k.startswith("tokenfleet:v1:svc_orders__x_:")
    assert "{" not in k and "}" not in k
    assert len(k.rsplit(":", 1)[1]) == 32


def test_cache_key_is_a_set_of_scopes() -> None:
    assert key(scopes=("b", "a", "a")) == key(scopes=("a", "b"))


@pytest.mark.parametrize(
    "change",
    [
        {"token_url": "https://other/token"},
        {"client_id": "svc:orders/{y}"},
        {"auth_method": "client_secret_post"},
        {"credential": "fp2"},
        {"scopes": ("a",)},
        {"scopes": ("a", "b", "c")},
        {"audience": "api"},
        {"resources": ("https://r",)},
        {"extra_params": {"tenant": "t"}},
    ],
)
def test_cache_key_changes_with_every_input(change: dict[str, object]) -> None:
    assert key(**change) != key()


# --------------------------------------------------------------------------- expiry


def tok(issued: float, lifetime: float) -> Token:
    return Token(access_token="t", expires_at=issued + lifetime, issued_at=issued)


def test_schedule_long_token() -> None:
    usable_until, refresh_at = policy.schedule(tok(0, 3600), leeway=30, refresh_ratio=0.8)
    assert usable_until == 3570
    assert refresh_at == pytest.approx(2880)


def test_schedule_short_token_stays_usable() -> None:
    usable_until, refresh_at = policy.schedule(tok(0, 5), leeway=30, refresh_ratio=0.8)
    assert usable_until == pytest.approx(4.5)
    assert refresh_at == pytest.approx(4.0)
    assert refresh_at < usable_until


def test_schedule_jitter_moves_refresh_earlier_only() -> None:
    _, plain = policy.schedule(tok(0, 100), leeway=5, refresh_ratio=0.8)
    _, jittered = policy.schedule(tok(0, 100), leeway=5, refresh_ratio=0.8, jitter=0.05)
    assert jittered == pytest.approx(75) and plain == pytest.approx(80)


def test_schedule_refresh_never_after_usable() -> None:
    usable_until, refresh_at = policy.schedule(tok(0, 100), leeway=50, refresh_ratio=1.0)
    assert refresh_at == usable_until == 90


@pytest.mark.parametrize("field", ["backoff", "max_backoff", "max_retry_after"])
@pytest.mark.parametrize("value", [None, "1", [1], float("nan")])
def test_retry_delays_must_be_numbers(field: str, value: object) -> None:
    from tokenfleet import Retry

    with pytest.raises(ConfigurationError, match="Retry"):
        Retry(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["timeout", "default_lifetime"])
@pytest.mark.parametrize("value", [None, "10", float("nan"), float("inf")])
def test_client_durations_must_be_finite_numbers(field: str, value: object) -> None:
    from tokenfleet import ClientCredentials

    with pytest.raises(ConfigurationError, match=field):
        ClientCredentials(
            "https://idp.example/token", client_id="c", client_secret="s", **{field: value}
        )
