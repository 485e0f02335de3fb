"""Fuzzing the token-endpoint exclusion of BearerAuth with spellings of its URL.

A server may route ``/oauth/token`` however it is spelled: any case, doubled or trailing
slashes, dot segments, percent-encoded letters, an explicit default port, a trailing dot
on the host. Every such spelling must count as the token endpoint (no bearer token goes
there); a different last segment must not.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from tokenfleet._bearer import endpoint_of, is_endpoint

TOKEN_URL = "https://idp.example/oauth/token"
ENDPOINT = endpoint_of(URL(TOKEN_URL))


@st.composite
def spell_segment(draw: st.DrawFn, segment: str) -> str:
    out = []
    for ch in segment:
        ch = ch.upper() if draw(st.booleans()) else ch
        out.append(f"%{ord(ch):02X}" if draw(st.integers(0, 4)) == 0 else ch)
    return "".join(out)


@st.composite
def spellings(draw: st.DrawFn, last: str = "token") -> str:
    parts = []
    for segment in ("oauth", last):
        parts.append("/" * draw(st.integers(1, 3)))
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(["./", "x/../", "a/b/../../"])))
        parts.append(draw(spell_segment(segment)))
    parts.append(draw(st.sampled_from(["", "/", "//", "?x=1", "#f"])))
    scheme = draw(st.sampled_from(["https", "HTTPS", "Https"]))
    host = draw(st.sampled_from(["idp.example", "IDP.EXAMPLE", "idp.example."]))
    port = draw(st.sampled_from(["", ":443"]))
    return f"{scheme}://{host}{port}{''.join(parts)}"


@given(spellings(), st.booleans())
def test_every_spelling_of_the_token_endpoint_is_excluded(url: str, encoded: bool) -> None:
    assert is_endpoint(URL(url, encoded=encoded), ENDPOINT), url


@given(st.sampled_from(["tokens", "token2", "introspect", "toke"]).flatmap(spellings))
def test_another_endpoint_is_not_excluded(url: str) -> None:
    assert not is_endpoint(URL(url), ENDPOINT), url
