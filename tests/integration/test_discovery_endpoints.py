"""Where discovered endpoints may point: an https issuer's metadata names https
endpoints only, and a token endpoint on another origin than the issuer is said once."""

from __future__ import annotations

import json
import logging

import pytest

from helpers import client_for
from tokenfleet import DiscoveryError
from tokenfleet._client import discovery
from tokenfleet.testing import DevAuthServer

ISSUER = "https://idp.example"


def metadata(**members: str) -> bytes:
    return json.dumps({"issuer": ISSUER, "token_endpoint": ISSUER + "/token", **members}).encode()


@pytest.mark.parametrize(
    "members",
    [
        {"token_endpoint": "http://127.0.0.1:8080/token"},  # loopback http: fine only for
        {"jwks_uri": "http://127.0.0.1:8080/jwks"},  # a loopback http issuer
        {"token_endpoint": "http://idp.example/token"},
        {"jwks_uri": "http://keys.example/jwks"},
    ],
)
@pytest.mark.parametrize("insecure", [False, True])
def test_https_issuer_metadata_with_http_endpoints_is_refused(
    members: dict[str, str], insecure: bool
) -> None:
    with pytest.raises(DiscoveryError, match="https"):
        discovery.parse_metadata(
            metadata(**members),
            issuer=ISSUER,
            url=ISSUER + "/.well-known/oauth-authorization-server",
            allow_insecure_http=insecure,
        )


def test_loopback_http_issuer_keeps_loopback_http_endpoints() -> None:
    issuer = "http://127.0.0.1:8080"
    body = json.dumps({"issuer": issuer, "token_endpoint": issuer + "/token"}).encode()
    meta = discovery.parse_metadata(body, issuer=issuer, url=issuer + "/.well-known/x")
    assert meta.token_endpoint == issuer + "/token"


async def test_token_endpoint_on_another_origin_is_logged_once(
    idp: DevAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Same server, another origin: "localhost" is not "127.0.0.1" (RFC 6454 §4).
    elsewhere = idp.token_url.replace("127.0.0.1", "localhost")
    idp.metadata_overrides = {"token_endpoint": elsewhere}
    caplog.set_level(logging.WARNING, logger="tokenfleet")
    for _ in range(2):  # two clients, each fetching the metadata
        async with client_for(idp, issuer=idp.issuer) as client:
            await client.fetch_token()
    said = [r for r in caplog.records if "another origin" in r.message]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "localhost" in said[0].message and idp.issuer in said[0].message
