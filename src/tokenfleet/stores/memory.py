"""``MemoryStore``: a bounded, in-process LRU of tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec

from .._exceptions import ConfigurationError
from .._models import Token

__all__ = ["MemoryStore"]


class MemoryStore:
    """Tokens in this process's memory, bounded by ``max_entries`` (least recently used go).

    Entries expire ``ttl`` seconds after ``set`` (by the monotonic clock). The lock is an
    ``asyncio.Lock`` per key: it serialises ``TokenManager`` instances of one process and
    one event loop, not processes.
    """

    def __init__(
        self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("MemoryStore max_entries must be an int >= 1")
        self.max_entries = max_entries
        # A plain dict kept in LRU order (re-inserted on use): an OrderedDict costs about
        # 53 bytes more per entry, a tuple 24 more than _Entry (scenario 6, "memory").
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._clock = clock

    holds_dpop_keys = True
    """DPoP-bound tokens stay in this process's memory, with their keys: always fine."""

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> Token | None:
        """The live token under ``key``, or ``None``."""
        item = self._entries.pop(key, None)
        if item is None or self._clock() >= item.deadline:
            return None
        self._entries[key] = item  # now the most recently used
        return item.token

    async def set(self, key: str, token: Token, ttl: float) -> None:
        """Keep ``token`` for ``ttl`` seconds, evicting the least recently used if full."""
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        entries = self._entries
        entries.pop(key, None)  # re-inserted last: the most recently used
        entries[key] = _Entry(token, self._clock() + ttl)
        while len(entries) > self.max_entries:
            del entries[next(iter(entries))]  # the least recently used

    async def delete(self, key: str, token: Token | None = None) -> bool:
        """Drop ``key`` (only if it still holds ``token``, when one is given)."""
        item = self._entries.get(key)
        if item is None or (token is not None and item.token.access_token != token.access_token):
            return False
        del self._entries[key]
        return True

    @asynccontextmanager
    async def lock(self, key: str, timeout: float) -> AsyncIterator[bool]:
        """An in-process lock per key; yields ``False`` if not acquired within ``timeout``."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        acquired = False
        try:
            try:
                async with asyncio.timeout(timeout):
                    await lock.acquire()
                acquired = True
            except TimeoutError:
                pass
            yield acquired
        finally:
            if acquired:
                lock.release()
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def aclose(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def __repr__(self) -> str:
        return f"MemoryStore(entries={len(self._entries)}, max_entries={self.max_entries})"


class _Entry(msgspec.Struct, frozen=True, gc=False):
    """One cached token and its deadline (monotonic clock). Not tracked by the garbage
    collector (16 bytes less): it refers to a token, and nothing refers back to it."""

    token: Token
    deadline: float
