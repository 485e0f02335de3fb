"""Fuzzing what a token endpoint can answer, through a whole ``TokenManager``.

tests/integration/test_client.py fuzzes one ``fetch_token`` with random status, body
bytes and Retry-After. This goes further: well-formed JSON with hostile values (the
parser's real input), random response headers, sequences of answers (a bad one, then
another) through the manager's cache, backoff and retry, and transport faults among them.
The promise: a usable token, or a ``TokenFleetError``; nothing else, never a hang.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import IdpFactory, client_for, manager_for
from tokenfleet import Retry, TokenFleetError
from tokenfleet.testing import DevAuthServer, Fault

EXAMPLE_TIMEOUT = 15.0

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),  # NaN/Infinity are not JSON; see _raw_numbers
    st.text(max_size=40),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "access_token": st.one_of(
            st.text(min_size=0, max_size=60), st.sampled_from(["eyJ.eyJ.x", "a.b.c", " "])
        ),
        "token_type": st.one_of(
            st.sampled_from(["Bearer", "bearer", "DPoP", "mac", ""]), _json_values
        ),
        "expires_in": st.one_of(
            st.integers(min_value=-10, max_value=2**63),
            st.sampled_from(["3600", "1e3", "", "-1"]),
            st.floats(allow_nan=False),
            _json_values,
        ),
        "scope": st.one_of(st.text(max_size=30), st.lists(st.text(max_size=5)), _json_values),
        "error": st.one_of(
            st.sampled_from(
                ["invalid_client", "invalid_scope", "slow_down", "server_error", "x" * 300]
            ),
            _json_values,
        ),
        "error_description": _json_values,
        "error_uri": _json_values,
        "refresh_token": _json_values,
    },
)
_raw_numbers = st.sampled_from(
    [
        b'{"access_token": "t", "expires_in": NaN}',
        b'{"access_token": "t", "expires_in": Infinity}',
        b'{"access_token": "t", "expires_in": 1e400}',
        b'{"access_token": "t", "access_token": "u", "expires_in": 60}',
        b'{"access_token": "t\\ud800", "expires_in": 60}',
        b"[]",
        b"null",
        b'"string"',
        b"\xef\xbb\xbf{}",
    ]
)
_headers = st.dictionaries(
    st.sampled_from(
        ["Retry-After", "Cache-Control", "WWW-Authenticate", "X-Junk", "Pragma", "Link"]
    ),
    st.one_of(
        st.sampled_from(
            ["0", "1", "-1", "999999999999", "1.5", "soon", "Thu, 01 Jan 1970 00:00:00 GMT"]
        ),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    ),
    max_size=3,
)
_content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "application/problem+json",
        "text/json",
        "text/html",
        "application/octet-stream",
        "",
    ]
)
_answers = st.one_of(
    st.builds(
        lambda status, body, ct, headers: Fault(
            status=status, body=body, content_type=ct, headers=headers
        ),
        st.sampled_from([200, 200, 200, 201, 400, 401, 403, 429, 500, 503]),
        st.one_of(_fields.map(lambda d: json.dumps(d).encode()), _raw_numbers),
        _content_types,
        _headers,
    ),
    st.sampled_from(
        [
            Fault(drop_connection=True),
            Fault(status=200, malformed_json=True),
            Fault(slow_body=0.2),
            Fault(delay=3.0),  # beyond the 1 s timeout
        ]
    ),
    st.none(),  # the real server's answer
)


@pytest.fixture(scope="module")
def threaded_idp(module_idp_factory: IdpFactory) -> DevAuthServer:
    return module_idp_factory(token_lifetime=60)


@settings(max_examples=80)
@given(answers=st.lists(_answers, min_size=1, max_size=4), scopes=st.sampled_from([None, ["a"]]))
def test_the_manager_gives_a_usable_token_or_a_typed_error(
    threaded_idp: DevAuthServer, answers: list[Fault | None], scopes: list[str] | None
) -> None:
    threaded_idp.clear_faults()
    for answer in answers:
        # one request each, in order; None lets one request through to the real server
        threaded_idp.inject_fault(answer or Fault(status=200, slow_body=0.001), count=1)

    async def use() -> list[Any]:
        retry = Retry(attempts=2, backoff=0.0, max_retry_after=0.05)
        outcomes: list[Any] = []
        async with (
            asyncio.timeout(EXAMPLE_TIMEOUT),
            manager_for(
                threaded_idp,
                client={"retry": retry, "timeout": 1.0},
                min_backoff=0.01,
                max_backoff=0.02,
            ) as manager,
        ):
            for _ in range(len(answers) + 1):
                try:
                    token = await manager.get_token(scopes)
                except TokenFleetError as exc:
                    outcomes.append(exc)
                    await asyncio.sleep(0.03)  # past the backoff
                    continue
                assert token.access_token
                assert token.expires_at > time.time()
                assert repr(token)  # and it shows
                outcomes.append(token)
        return outcomes

    outcomes = asyncio.run(use())
    threaded_idp.clear_faults()
    assert outcomes


# Found by fuzzing: msgspec reports invalid UTF-8 inside a JSON string as
# UnicodeDecodeError, which _client/response.py's parsers (``except msgspec.DecodeError``) let
# through: the caller gets a bare UnicodeDecodeError instead of a TokenFleetError.
@pytest.mark.parametrize("status", [200, 400, 503])
async def test_invalid_utf8_inside_a_json_string_is_a_typed_error(
    idp: DevAuthServer, status: int
) -> None:
    idp.inject_fault(Fault(status=status, body=b'{"access_token": "\xff", "error": "\xfe"}'))
    async with client_for(idp, retry=Retry(attempts=1)) as client:
        with pytest.raises(TokenFleetError):
            await client.fetch_token()
