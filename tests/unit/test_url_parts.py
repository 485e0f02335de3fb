"""The URL parts BearerAuth reads on every request, and the tables it keeps them in.

Both integrations read a URL's origin and raw path from the library's own attributes
where those hold what its public accessors return (``tokenfleet.aiohttp.SLOTS``,
``tokenfleet.httpx.PARSED``): these tests pin that equivalence on awkward URLs, so a
yarl or httpx release that changes its internals fails here, not in production. And the
decision tables stay bounded whatever the requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from yarl import URL

import tokenfleet.aiohttp
import tokenfleet.httpx
from tokenfleet import ClientCredentials, TokenManager
from tokenfleet._bearer import Destinations, TokenPaths
from tokenfleet._client.endpoints import PATHS_KEPT
from tokenfleet._util.bounded import MAX_KEYS

URLS = [
    "https://api.example/orders",
    "https://API.Example:443/orders?id=1#top",
    "http://api.example:80",
    "http://user:pw@api.example:8080/a%20b/",
    "https://xn--fiqs8s.example/%74oken",
    "https://[::1]:8443/x/../token//",
    "https://127.0.0.1/./token?x=%2F",
]


def test_the_installed_yarl_and_httpx_take_the_fast_reads() -> None:
    assert tokenfleet.aiohttp.SLOTS and tokenfleet.httpx.PARSED
    assert tokenfleet.httpx.HEADER_LIST


@pytest.mark.parametrize("header_list", [True, False], ids=["header list", "public"])
@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
def test_httpx_authorization_is_found_and_set_as_the_public_accessors_do(
    monkeypatch: pytest.MonkeyPatch, header_list: bool, name: str
) -> None:
    """The caller's own header is seen whatever its case; ours is set as
    ``headers["Authorization"] = value`` sets it, and what httpx sends carries it."""
    monkeypatch.setattr(tokenfleet.httpx, "HEADER_LIST", header_list)
    own = httpx.Request("GET", "https://api.example/x", headers={name: "Basic abc"})
    assert tokenfleet.httpx._has_authorization(own.headers)
    ours = httpx.Request("GET", "https://api.example/x", headers={"X-Trace": "1"})
    public = httpx.Request("GET", "https://api.example/x", headers={"X-Trace": "1"})
    assert not tokenfleet.httpx._has_authorization(ours.headers)
    tokenfleet.httpx._set_authorization(ours.headers, "Bearer t0k.en")
    public.headers["Authorization"] = "Bearer t0k.en"
    assert tokenfleet.httpx._has_authorization(ours.headers)
    assert ours.headers.raw == public.headers.raw
    assert ours.headers.multi_items() == public.headers.multi_items()
    assert ours.headers.get("AUTHORIZATION") == "Bearer t0k.en"


def test_a_non_ascii_header_value_takes_the_public_setter() -> None:
    headers = httpx.Headers({"Host": "api.example"})
    tokenfleet.httpx._set_authorization(headers, "Bearer caf\u00e9")
    assert headers.get("Authorization") == "Bearer caf\u00e9"


@pytest.mark.parametrize("text", URLS)
@pytest.mark.parametrize("encoded", [False, True])
def test_yarl_slots_hold_what_its_accessors_return(text: str, encoded: bool) -> None:
    url = URL(text, encoded=encoded)
    assert (url._scheme, url._netloc) == (url.scheme, url.raw_authority)
    assert (url._path or "/") == url.raw_path  # the path a request's raw path decodes to


@pytest.mark.parametrize("text", URLS)
def test_httpx_parsed_form_holds_what_its_accessors_return(text: str) -> None:
    url = httpx.URL(text)
    parsed = url._uri_reference
    assert (parsed.scheme, parsed.host.encode("ascii"), parsed.port) == (
        url.scheme,
        url.raw_host,
        url.port,
    )
    assert (parsed.path or "/") == url.raw_path.partition(b"?")[0].decode("ascii")


def test_token_paths_answers_by_path_and_stays_bounded() -> None:
    paths = TokenPaths(frozenset({"/oauth/token"}))
    for spelling in ("/oauth/token", "/OAUTH//token/", "/oauth/%74oken", "/a/../oauth/token"):
        url = URL("https://idp.example" + spelling, encoded=True)
        assert not paths.allows(url.raw_path, url), spelling
    for number in range(PATHS_KEPT + 50):  # as many distinct paths as an API with ids has
        url = URL(f"https://idp.example/orders/{number}")
        assert paths.allows(url.raw_path, url)
        assert len(paths.seen) <= PATHS_KEPT
    url = URL("https://idp.example/oauth/token")  # its answer was evicted: decided again
    assert "/oauth/token" not in paths.seen and not paths.allows(url.raw_path, url)
    url = URL("https://idp.example/oauth/%2574oken", encoded=True)  # decodes to %74oken
    assert paths.allows(url.raw_path, url)


@pytest.fixture
async def manager() -> AsyncIterator[TokenManager]:
    client = ClientCredentials("https://idp.example/oauth/token", client_id="c", client_secret="s")
    async with TokenManager(client) as manager:
        yield manager


async def test_origin_verdicts_stay_bounded_and_never_move_between_hosts(
    manager: TokenManager,
) -> None:
    destinations = Destinations(
        "aiohttp",
        manager,
        ["https://api.example", "https://idp.example"],
        allow_insecure_http=False,
    )
    for number in range(MAX_KEYS + 50):  # refused origins: each cached, the table bounded
        url = URL(f"https://host{number}.example/orders")
        assert not destinations.allows(url, key=(url.scheme, url.raw_authority))
        assert len(destinations.verdicts) <= MAX_KEYS
    for _ in range(2):  # the same path on other hosts, before and after being cached
        for host, allowed in [("api.example", True), ("idp.example", True), ("x.example", False)]:
            url = URL(f"https://{host}/orders")
            assert destinations.allows(url, key=(url.scheme, url.raw_authority)) is allowed
    assert destinations.verdicts[("https", "api.example")] is True
    assert isinstance(destinations.verdicts[("https", "idp.example")], TokenPaths)
    url = URL("https://idp.example/oauth/token")
    assert not destinations.allows(url, key=(url.scheme, url.raw_authority))
