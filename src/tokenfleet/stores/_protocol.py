"""The ``TokenStore`` protocol: what a cache backend must do for a ``TokenManager``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from .._exceptions import ConfigurationError
from .._models import Token

__all__ = ["FleetStore", "TokenStore", "WaitingStore", "require_store"]


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


@runtime_checkable
class FleetStore(TokenStore, Protocol):
    """A shared store that also carries fleet-wide signals (file and Redis stores do).

    A ``TokenManager`` uses these when its store has them: a cooldown one process records
    (the token endpoint said 429, kept failing, or refused the credentials) makes every
    process back off, and ``delete(key, token)`` also tells every process to drop that
    token from its near cache.
    """

    async def get_cooldown(self, key: str) -> tuple[float, str] | None:
        """``(until, reason)`` of the active cooldown for ``key`` (Unix seconds), or ``None``."""
        ...

    async def set_cooldown(self, key: str, until: float, reason: str) -> None:
        """Record a cooldown for ``key`` until ``until`` (Unix seconds); it expires by itself."""
        ...

    def invalidations(self) -> AsyncIterator[tuple[str, str]]:
        """``(key, fingerprint)`` of every token deleted by any process (``"*"``: any token).

        Runs until the store is closed, then ends. Backend outages are retried with a
        bounded backoff and never raised to the consumer; invalidations published during
        an outage may be lost (the token then ages out as usual).
        """
        ...


@runtime_checkable
class WaitingStore(TokenStore, Protocol):
    """A store whose lock waiters also watch for the token another process is fetching.

    A waiter of :meth:`TokenStore.lock` learns that the token exists only once it wins
    the lock; with many waiters they win one at a time (a convoy). A ``TokenManager``
    whose store has :meth:`lock_or_token` uses it instead, so every waiter is served
    as soon as the token lands. Stores without it keep working through ``lock``.
    """

    def lock_or_token(
        self, key: str, timeout: float, accept: Callable[[Token], bool]
    ) -> AbstractAsyncContextManager[bool | Token]:
        """Like :meth:`TokenStore.lock`, but may end the wait with the token instead.

        Yields ``True`` (the lock is held), ``False`` (still held by someone else after
        ``timeout`` seconds) or a :class:`~tokenfleet.Token` stored under ``key`` while
        waiting that ``accept(token)`` approved (the lock is then not held). Raises
        ``StoreError`` if the backend cannot be reached.
        """
        ...


def require_store(store: object, where: str) -> None:
    """Refuse, at once, a ``store`` argument that is not a :class:`TokenStore`.

    Raises:
        ConfigurationError: naming ``where`` (e.g. ``"TokenManager(store=...)"``), what
            it got, and what to pass instead.
    """
    if isinstance(store, TokenStore):
        return
    hint = (
        "; for a store URL, pass tokenfleet.store_from_url(url)"
        if isinstance(store, (str, bytes))
        else ""
    )
    raise ConfigurationError(
        f"{where} needs a TokenStore (MemoryStore, FileStore, RedisStore or an object "
        f"with get/set/delete/lock/aclose), got {type(store).__name__}{hint}"
    )
