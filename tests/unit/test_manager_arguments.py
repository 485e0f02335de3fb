"""TokenManager's duration arguments: anything but a finite positive number is a
ConfigurationError that names the argument, never a bare TypeError from a comparison."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from tokenfleet import ConfigurationError, Token, TokenManager


class Source:
    def cache_key(self, scopes: str | Iterable[str] | None = None) -> str:
        return "args"

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        raise AssertionError("not fetched")


@pytest.mark.parametrize("name", ["min_backoff", "max_backoff", "fetch_timeout", "lock_timeout"])
@pytest.mark.parametrize("value", [None, "5", float("nan"), float("inf"), -1.0, True])
def test_bad_durations_are_a_configuration_error(name: str, value: Any) -> None:
    if value is None and name in ("fetch_timeout", "lock_timeout"):
        return  # None means "the default" for these two
    with pytest.raises(ConfigurationError, match=name):
        TokenManager(Source(), **{name: value})


@pytest.mark.parametrize(
    ("store", "hint"),
    [(123, "got int"), ("redis://127.0.0.1:6379/0", "store_from_url"), (object(), "got object")],
)
def test_a_store_that_is_not_a_token_store_is_a_configuration_error(store: Any, hint: str) -> None:
    """Accepted before, it failed on the first call with a bare AttributeError."""
    with pytest.raises(ConfigurationError, match="store") as raised:
        TokenManager(Source(), store=store)
    assert hint in str(raised.value)


@pytest.mark.parametrize("store", [123, object(), b"redis://127.0.0.1:6379/0"])
async def test_check_refuses_a_store_that_is_not_a_token_store(store: Any) -> None:
    """``check(client, store=123)`` raised a bare AttributeError (and left its HTTP
    session open); a caller's mistake is a ConfigurationError, raised before any I/O."""
    import tokenfleet

    client = tokenfleet.ClientCredentials(
        "https://127.0.0.1:9/token", client_id="app", client_secret="s3cret-value"
    )
    with pytest.raises(ConfigurationError, match="store") as raised:
        await tokenfleet.check(client, store=store)
    assert "s3cret-value" not in str(raised.value)
    await client.aclose()
