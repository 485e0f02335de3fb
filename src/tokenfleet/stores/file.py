"""``FileStore``: tokens in a private directory, shared by the processes of one host.

One file per key, named by a hash of the key (keys may contain anything)::

    <sha256(key)[:40]>.tok        the token envelope (see :mod:`._codec`)
    <sha256(key)[:40]>.lock       flock'ed by the process fetching the key
    <sha256(key)[:40]>.cooldown   a fleet-wide cooldown
    <sha256(key)[:40]>.inv        the last invalidation (a tombstone other processes poll)

Writes are atomic (a 0600 temp file in the same directory, fsync, ``os.replace``), so a
reader sees the old file or the new one, never a torn one. Expiry: the envelope carries
the absolute deadline the store's ``ttl`` gave; a file past it is a miss (it stays on
disk until the key is written again: one small file per key).

Reads, ``stat`` and ``flock`` are small and done inline on the event loop; writes, which
``fsync``, run in the default thread pool (bounded by its size).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec

from .._exceptions import ConfigurationError, StoreError
from .._models import Token
from . import _codec

__all__ = ["FileStore", "default_directory"]

logger = logging.getLogger("tokenfleet")

_MAX_FILE = 1 << 20  # a token file is a few KB; anything bigger is not ours
_INVALIDATION_POLL = 0.2  # seconds between two scans for tombstones


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
        ConfigurationError: the directory cannot be created, is not a directory, is
            owned by another user, or is writable by group or others (anyone who can write
            there could plant tokens).
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
        _prepare_directory(self.path)
        self._poll = (lock_poll_initial, lock_poll_max)
        self._codec = _codec.Codec(f"FileStore({self.path})", cipher=cipher)
        self._closed = asyncio.Event()

    def _file(self, key: str, suffix: str) -> Path:
        name = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return self.path / f"{name}{suffix}"

    # ------------------------------------------------------------------ tokens

    @property
    def holds_dpop_keys(self) -> bool:
        """Whether DPoP-bound tokens may be stored: only sealed, so only with a cipher."""
        return self._codec.cipher is not None

    async def get(self, key: str) -> Token | None:
        """The live token under ``key``, or ``None`` (missing, expired or unreadable)."""
        data = _read(self._file(key, ".tok"))
        return None if data is None else self._codec.decode(data, key)

    async def set(self, key: str, token: Token, ttl: float) -> None:
        """Write ``token`` atomically, valid for ``ttl`` seconds."""
        target = self._file(key, ".tok")
        if ttl <= 0:
            _unlink(target)
            return
        data = self._codec.encode(token, time.time() + ttl, key)
        await asyncio.to_thread(_write_atomic, target, data)

    async def delete(self, key: str, token: Token | None = None) -> bool:
        """Delete ``key`` (only if it holds ``token``); leave a tombstone for the others."""
        deleted = _compare_and_unlink(self._file(key, ".tok"), token)
        fp = "*" if token is None else token.fingerprint
        tombstone = msgspec.msgpack.encode(_Tombstone(key, fp))
        await asyncio.to_thread(_write_atomic, self._file(key, ".inv"), tombstone)
        return deleted

    # ------------------------------------------------------------------ the fleet lock

    @asynccontextmanager
    async def lock(self, key: str, timeout: float) -> AsyncIterator[bool]:
        """``flock(LOCK_EX | LOCK_NB)`` polled with backoff; yields whether it was acquired.

        The OS releases the lock when its holder exits, however it dies.
        """
        path = self._file(key, ".lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _store_error("open the lock file", path, exc) from exc
        try:
            yield await self._acquire(fd, path, timeout)
        finally:
            os.close(fd)  # releases the flock, if held

    async def _acquire(self, fd: int, path: Path, timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = self._poll[0]
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            except OSError as exc:
                raise _store_error("lock", path, exc) from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, self._poll[1])

    # ------------------------------------------------------------------ cooldowns

    async def get_cooldown(self, key: str) -> tuple[float, str] | None:
        """``(until, reason)`` of the cooldown for ``key``, or ``None``."""
        data = _read(self._file(key, ".cooldown"))
        entry = None if data is None else _codec.decode_cooldown(data)
        if entry is None or entry.until <= time.time():
            return None
        return entry.until, entry.reason

    async def set_cooldown(self, key: str, until: float, reason: str) -> None:
        """Record a cooldown for ``key`` until ``until`` (read as none from then on)."""
        data = _codec.encode_cooldown(until, reason)
        await asyncio.to_thread(_write_atomic, self._file(key, ".cooldown"), data)

    # ------------------------------------------------------------------ invalidations

    async def invalidations(self) -> AsyncIterator[tuple[str, str]]:
        """``(key, fingerprint)`` of each tombstone written after the iteration started.

        Polls the directory every 0.2 s; a tombstone rewritten twice between two polls
        is seen once (its latest invalidation). Ends when the store is closed.
        """
        seen = self._tombstones()
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_INVALIDATION_POLL):
                    await self._closed.wait()
            current = self._tombstones()
            for path, version in current.items():
                if seen.get(path) != version:
                    item = _read_tombstone(path)
                    if item is not None:
                        yield item
            seen = current

    def _tombstones(self) -> dict[Path, tuple[int, int]]:
        """Each tombstone with its (inode, mtime): ``os.replace`` gives a new inode."""
        found: dict[Path, tuple[int, int]] = {}
        with contextlib.suppress(OSError):  # an unreadable directory: nothing this round
            for entry in os.scandir(self.path):
                if entry.name.endswith(".inv"):
                    with contextlib.suppress(OSError):
                        info = entry.stat(follow_symlinks=False)
                        found[Path(entry.path)] = (info.st_ino, info.st_mtime_ns)
        return found

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """End the invalidation iterators (there is nothing else to release)."""
        self._closed.set()

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"


# ---------------------------------------------------------------------- file helpers


def _prepare_directory(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(path)
    except OSError as exc:
        raise ConfigurationError(f"FileStore: cannot create directory {path}: {exc}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigurationError(f"FileStore: {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise ConfigurationError(
            f"FileStore: {path} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}); use a directory of your own"
        )
    if info.st_mode & 0o022:
        raise ConfigurationError(
            f"FileStore: {path} is writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):o}); run `chmod 700 {path}` or choose another"
        )


def _store_error(action: str, path: Path, exc: OSError) -> StoreError:
    reason = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return StoreError(f"FileStore: cannot {action} {path} ({reason}: {exc.strerror or exc})")


def _read(path: Path) -> bytes | None:
    """The file's bytes, ``None`` if it does not exist; ``StoreError`` on other failures."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _store_error("read", path, exc) from exc
    with os.fdopen(fd, "rb") as file:
        try:
            return file.read(_MAX_FILE + 1)
        except OSError as exc:
            raise _store_error("read", path, exc) from exc


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a failure leaves no temp file behind."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")  # mode 0600
    except OSError as exc:
        raise _store_error("write", path, exc) from exc
    try:
        with _removing_on_error(tmp), os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
            os.replace(tmp, path)
    except OSError as exc:
        raise _store_error("write", path, exc) from exc


@contextlib.contextmanager
def _removing_on_error(tmp: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _store_error("delete", path, exc) from exc
    return True


def _compare_and_unlink(path: Path, token: Token | None) -> bool:
    """Delete ``path``; with ``token``, only if the file still holds that token.

    The check and the unlink are not one atomic step: the file is first moved aside
    (atomically), checked there, and put back with ``os.link`` if it holds another token
    (unless a newer file arrived meanwhile, which then wins).
    """
    if token is None:
        return _unlink(path)
    header = _codec.header(token.fingerprint)
    data = _read(path)
    if data is None or not data.startswith(header):
        return False  # the common case: nothing to move
    aside = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.del")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _store_error("delete", path, exc) from exc
    try:
        moved = _read(aside) or b""
        if moved.startswith(header):
            return True
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(aside)


def _read_tombstone(path: Path) -> tuple[str, str] | None:
    try:
        data = _read(path)
        if data is None:
            return None
        tombstone = msgspec.msgpack.decode(data, type=_Tombstone)
    except (StoreError, msgspec.DecodeError, UnicodeDecodeError):
        return None
    return tombstone.key, tombstone.fp
