"""The one aiohttp session a client or verifier opens lazily, and closes if it opened it."""

from __future__ import annotations

import aiohttp

from .._exceptions import ConfigurationError

__all__ = ["LazySession"]


class LazySession:
    """An ``aiohttp.ClientSession`` made on first use (inside the event loop).

    A session given by the user is used as is and never closed here.
    """

    def __init__(self, owner: str, session: aiohttp.ClientSession | None = None) -> None:
        self._owner = owner
        self._session = session
        self._owned = session is None
        self._closed = False

    def get(self) -> aiohttp.ClientSession:
        """The session; raises ``ConfigurationError`` once closed."""
        if self._closed:
            raise ConfigurationError(f"this {self._owner} is closed; create a new one")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None),  # callers bound their own time
                headers={"User-Agent": "tokenfleet"},
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if we opened it; later ``get()`` calls raise."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owned:
            await session.close()
