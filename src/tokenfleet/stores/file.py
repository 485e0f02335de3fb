"""``FileStore``: tokens in a private directory, shared by the processes of one host.

One file per key, named by a hash of the key (keys may contain anything)::

    <sha256(key)[:40]>.tok        the token envelope (see :mod:`._codec`)
    <sha256(key)[:40]>.lock       flock'ed by the process fetching the key
    <sha256(key)[:40]>.cooldown   a fleet-wide cooldown
    <sha256(key)[:40]>.inv        the last invalidation (a tombstone other processes poll)

The directory is opened once and every file is used relative to it (see :mod:`._files`).
Writes are atomic (a 0600 temp file in the same directory, fsync, ``os.replace``), so a
reader sees the old file or the new one, never a torn one. Expiry: the envelope carries
the absolute deadline the store's ``ttl`` gave; a file past it is a miss (it stays on
disk until the key is written again: one small file per key).

Reads, ``fstat`` and ``flock`` are small and done inline on the event loop; writes, which
``fsync``, and scans of the directory run in the default thread pool (bounded by its size).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import msgspec

from .._exceptions import ConfigurationError, StoreError
from .._models import Token
from . import _codec
from ._files import Directory

__all__ = ["FileStore", "default_directory"]

logger = logging.getLogger("tokenfleet")

_INVALIDATION_POLL = 0.2  # seconds between two looks for new tombstones
# A directory modified this recently is scanned at every poll: its mtime may not have
# ticked for a change made in the same clock tick as our last look.
_SETTLE = 2.0
_TOMBSTONE_TTL = 60.0  # seconds; every live process has long seen a tombstone by then


def default_directory() -> Path:
    """``$XDG_CACHE_HOME/tokenfleet``, or ``~/.cache/tokenfleet``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tokenfleet"


class _Tombstone(msgspec.Struct, array_like=True):
    key: str
    fp: str


class FileStore:
    """Tokens in files under ``path``; the lock is ``fcntl.flock`` (POSIX hosts).

    Args:
        path: the directory; default :func:`default_directory`. Created with mode 0700.
        lock_poll_initial: first backoff (seconds) of a lock waiter's polling.
        lock_poll_max: longest backoff of that polling.
        cipher: encryption at rest, e.g. :class:`~tokenfleet.AesGcmCipher`; default none.

    Raises:
        ConfigurationError: the directory cannot be created, is a symlink or not a
            directory, is owned by another user, is writable by group or others (anyone
            who can write there could plant tokens), or has a parent writable by others
            without the sticky bit.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        lock_poll_initial: float = 0.005,
        lock_poll_max: float = 0.05,
        cipher: _codec.Cipher | None = None,
    ) -> None:
        if not 0 < lock_poll_initial <= lock_poll_max:
            raise ConfigurationError("FileStore needs 0 < lock_poll_initial <= lock_poll_max")
        self.path = Path(path).expanduser() if path is not None else default_directory()
        self._dir = Directory(self.path)
        self._poll = (lock_poll_initial, lock_poll_max)
        self._codec = _codec.Codec(f"FileStore({self.path})", cipher=cipher)
        self._closed = asyncio.Event()

    def _name(self, key: str, suffix: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return f"{digest}{suffix}"

    def _file(self, key: str, suffix: str) -> Path:
        return self.path / self._name(key, suffix)

    # ------------------------------------------------------------------ tokens

    @property
    def holds_dpop_keys(self) -> bool:
        """Whether DPoP-bound tokens may be stored: only sealed, so only with a cipher."""
        return self._codec.cipher is not None

    async def get(self, key: str) -> Token | None:
        """The live token under ``key``, or ``None`` (missing, expired or unreadable)."""
        data = self._dir.read(self._name(key, ".tok"))
        return None if data is None else self._codec.decode(data, key)

    async def set(self, key: str, token: Token, ttl: float) -> None:
        """Write ``token`` atomically, valid for ``ttl`` seconds."""
        target = self._name(key, ".tok")
        if ttl <= 0:
            self._dir.unlink(target)
            return
        data = self._codec.encode(token, time.time() + ttl, key)
        await asyncio.to_thread(self._dir.write_atomic, target, data)

    async def delete(self, key: str, token: Token | None = None) -> bool:
        """Delete ``key`` (only if it holds ``token``); leave a tombstone for the others."""
        name = self._name(key, ".tok")
        if token is None:
            deleted = self._dir.unlink(name)
        else:
            deleted = self._dir.unlink_if(name, _codec.header(token.fingerprint))
        fp = "*" if token is None else token.fingerprint
        tombstone = msgspec.msgpack.encode(_Tombstone(key, fp))
        await asyncio.to_thread(self._dir.write_atomic, self._name(key, ".inv"), tombstone)
        return deleted

    # ------------------------------------------------------------------ the fleet lock

    def lock(self, key: str, timeout: float) -> AbstractAsyncContextManager[bool]:
        """``flock(LOCK_EX | LOCK_NB)`` polled with jittered backoff; yields whether held.

        The OS releases the lock when its holder exits, however it dies.
        """
        return self._locked(key, timeout, None)  # type: ignore[return-value]

    def lock_or_token(
        self, key: str, timeout: float, accept: Callable[[Token], bool]
    ) -> AbstractAsyncContextManager[bool | Token]:
        """Like :meth:`lock`, but each poll first reads the token file, and the wait ends
        with the token as soon as one is there that ``accept(token)`` approves."""
        return self._locked(key, timeout, accept)

    @asynccontextmanager
    async def _locked(
        self, key: str, timeout: float, accept: Callable[[Token], bool] | None
    ) -> AsyncIterator[bool | Token]:
        fd = self._dir.open_lock(self._name(key, ".lock"))
        try:
            yield await self._acquire(fd, key, timeout, accept)
        finally:
            os.close(fd)  # releases the flock, if held

    async def _acquire(
        self, fd: int, key: str, timeout: float, accept: Callable[[Token], bool] | None
    ) -> bool | Token:
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = self._poll[0]
        name = self._name(key, ".tok")
        seen = self._dir.version(name)  # the caller has just read this one
        while True:
            if accept is not None and (version := self._dir.version(name)) != seen:
                seen = version  # only a new file is read and decoded again
                token = await self.get(key)
                if token is not None and accept(token):
                    return token
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            except OSError as exc:
                raise self._dir.error("lock", self._name(key, ".lock"), exc) from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Jittered, so that waiters that started together do not poll together.
            pause = min(random.uniform(0.5, 1.5) * delay, self._poll[1], remaining)  # noqa: S311
            await asyncio.sleep(pause)
            delay = min(delay * 2, self._poll[1])

    # ------------------------------------------------------------------ cooldowns

    async def get_cooldown(self, key: str) -> tuple[float, str] | None:
        """``(until, reason)`` of the cooldown for ``key``, or ``None``."""
        data = self._dir.read(self._name(key, ".cooldown"))
        entry = None if data is None else _codec.decode_cooldown(data)
        if entry is None or entry.until <= time.time():
            return None
        return entry.until, entry.reason

    async def set_cooldown(self, key: str, until: float, reason: str) -> None:
        """Record a cooldown for ``key`` until ``until`` (read as none from then on)."""
        data = _codec.encode_cooldown(until, reason)
        await asyncio.to_thread(self._dir.write_atomic, self._name(key, ".cooldown"), data)

    # ------------------------------------------------------------------ invalidations

    async def invalidations(self) -> AsyncIterator[tuple[str, str]]:
        """``(key, fingerprint)`` of each tombstone written after the iteration started.

        Looks every 0.2 s whether the directory changed (one ``fstat``), and only then
        scans it, in a thread; a tombstone rewritten twice between two scans is seen once
        (its latest invalidation). Tombstones older than a minute are deleted by the
        scan. Ends when the store is closed.
        """
        seen = await self._tombstones()
        looked = self._dir.modified()
        while (modified := await self._next_change(looked)) is not None:
            looked = modified
            current = await self._tombstones()
            for name, version in current.items():
                if seen.get(name) != version:
                    item = self._read_tombstone(name)
                    if item is not None:
                        yield item
            seen = current

    async def _next_change(self, looked: int) -> int | None:
        """Wait until the directory's mtime is no longer ``looked`` (or too recent to
        trust); the new one, or ``None`` once the store is closed.

        Looks every 0.2 s from a loop callback (one ``fstat``): every idle member pays
        these looks five times a second, and a callback costs a few microseconds where
        waking a task from ``asyncio.sleep`` cost about 30 (1,000 idle members: 16 % of
        a core)."""
        loop = asyncio.get_running_loop()
        found: asyncio.Future[int | None] = loop.create_future()
        handle: asyncio.TimerHandle

        def look() -> None:
            nonlocal handle
            if self._closed.is_set():
                found.set_result(None)
                return
            modified = self._dir.modified()
            if modified == looked and time.time() - modified / 1e9 > _SETTLE:
                handle = loop.call_later(_INVALIDATION_POLL, look)  # the idle case
                return
            found.set_result(modified)

        handle = loop.call_later(_INVALIDATION_POLL, look)
        try:
            return await found
        finally:
            handle.cancel()

    async def _tombstones(self) -> dict[str, tuple[int, int]]:
        prune_before = time.time() - _TOMBSTONE_TTL
        return await asyncio.to_thread(self._dir.versions, ".inv", prune_before)

    def _read_tombstone(self, name: str) -> tuple[str, str] | None:
        try:
            data = self._dir.read(name)
            if data is None:
                return None
        except StoreError:
            return None
        tombstone = _codec.load(data, _Tombstone)
        return None if tombstone is None else (tombstone.key, tombstone.fp)

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """End the invalidation iterators (there is nothing else to release)."""
        self._closed.set()

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"
