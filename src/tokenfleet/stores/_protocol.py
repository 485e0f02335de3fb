"""The ``TokenStore`` protocol: what a cache backend must do for a ``TokenManager``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from .._models import Token

__all__ = ["TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    """A place to keep tokens, shared or not, plus a lock for the fleet-wide single flight.

    Implementations must be safe to call from many coroutines at once. Any failure to
    reach the backend is raised as :class:`~tokenfleet.StoreError`; a stored value that
    cannot be read (garbage, another format version) is a miss, not an error.
    """

    async def get(self, key: str) -> Token | None:
        """The token stored under ``key``, or ``None``."""
        ...

    async def set(self, key: str, token: Token, ttl: float) -> None:
        """Store ``token`` under ``key`` for ``ttl`` seconds (then it may vanish)."""
        ...

    async def delete(self, key: str, token: Token | None = None) -> bool:
        """Delete ``key``; with ``token``, only if that very token is still stored.

        Returns whether something was deleted.
        """
        ...

    def lock(self, key: str, timeout: float) -> AbstractAsyncContextManager[bool]:
        """Hold the single-flight lock for ``key`` while fetching.

        The context manager yields ``True`` once the lock is held, or ``False`` when it was
        still held by someone else after ``timeout`` seconds (the caller then fetches
        anyway: liveness over strictness). It raises ``StoreError`` if the backend cannot
        be reached. Implementations must bound every wait by ``timeout``.
        """
        ...

    async def aclose(self) -> None:
        """Release connections or files the store opened."""
        ...
