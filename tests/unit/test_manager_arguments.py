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
