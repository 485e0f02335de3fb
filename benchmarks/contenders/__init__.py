"""The contenders: tokenfleet and the libraries a user would pick instead.

Each module holds one :class:`Contender` subclass, used the way its own documentation
recommends, with the HTTP settings of ``_support`` (pool size, timeout) wherever the
library lets us set them. A contender that cannot do something says why (``n/a``
reasons below) instead of producing a number.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from _support import Server


@dataclass(frozen=True)
class Setup:
    """Where the authorization server is, and how this measurement wants the client."""

    url: str
    resource_url: str
    token_url: str
    client_id: str
    client_secret: str
    # Seconds before expiry at which the library should treat a token as expired, for
    # libraries that let you choose (the expiry herd sets it to 20 % of a 2 s lifetime);
    # None: the library's own default.
    margin: float | None = None
    # Fleet scenario: how the processes share tokens ("file://...", "redis://...", a
    # JSON file path, ...); None: no sharing.
    share: str | None = None

    @classmethod
    def of(cls, server: Server, **changes: Any) -> Setup:
        info = server.info
        return cls(
            url=info["url"],
            resource_url=info["issuer"] + "/resource",
            token_url=info["token_url"],
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            **changes,
        )


class Contender:
    """One way to send authenticated requests. An async context manager."""

    label: ClassVar[str]
    # Fleet variants this library offers: name -> what is shared (empty: no sharing).
    sharing: ClassVar[dict[str, str]] = {}
    # Why scenario 4 (the bare get-token cost) does not apply, or None when it does.
    no_get_token: ClassVar[str | None] = None
    # Why the expiry herd margin cannot be set, or None when it can.
    no_margin: ClassVar[str | None] = None

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.slowest_wait = 0.0  # seconds, the longest token acquisition (when instrumented)

    async def __aenter__(self) -> Contender:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def prepare(self) -> None:
        """What the library's docs say to do before the first request (usually nothing)."""

    async def call(self) -> int:
        """One authenticated GET of the protected resource; its final HTTP status."""
        raise NotImplementedError

    async def bare_call(self, authorization: str) -> int:
        """The same GET through the same kind of client with the same settings, with a
        fixed ``Authorization`` header and no auth library: the baseline of scenario 3."""
        raise NotImplementedError

    async def get_token(self) -> object:
        """The library's own "give me the current token" call, if it has one."""
        raise NotImplementedError

    def instrument(self) -> None:
        """Time every token acquisition into ``slowest_wait`` (expiry herd only)."""
        raise NotImplementedError

    def _timed(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.slowest_wait = max(self.slowest_wait, time.perf_counter() - started)

        return timed

    def _timed_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.slowest_wait = max(self.slowest_wait, time.perf_counter() - started)

        return timed


# Names in table order; the classes import their library only when loaded.
NAMES = (
    "tokenfleet_aiohttp",
    "tokenfleet_httpx",
    "authlib_httpx",
    "httpxauth",
    "aiohttp_oauth2",
    "handwritten",
)
LABELS = {
    "tokenfleet_aiohttp": "tokenfleet + aiohttp",
    "tokenfleet_httpx": "tokenfleet + httpx",
    "authlib_httpx": "Authlib (httpx)",
    "httpxauth": "httpx-auth",
    "aiohttp_oauth2": "aiohttp-oauth2-client",
    "handwritten": "hand-written (aiohttp)",
}
TOKENFLEET = ("tokenfleet_aiohttp", "tokenfleet_httpx")
CONTROLS = ("control_aiohttp", "control_httpx")  # the HTTP clients alone, no auth library


def load(name: str) -> type[Contender]:
    """The contender class of module ``name`` (only that library is imported)."""
    if name not in NAMES and name not in CONTROLS:
        raise ValueError(f"unknown contender {name!r}")
    module = importlib.import_module(f"contenders.{name}")
    return module.CONTENDER  # type: ignore[no-any-return]


async def fixed_authorization(setup: Setup) -> str:
    """One token, fetched outside any library under test, as a fixed header value."""
    import tokenfleet

    source = tokenfleet.ClientCredentials(
        setup.token_url, client_id=setup.client_id, client_secret=setup.client_secret
    )
    async with source:
        return (await source.fetch_token()).authorization
