"""The file store when its file system fails: read-only, full, a stale or stuck lock.

Root ignores permission bits, and CI runs as root, so ``chmod`` cannot make a directory
read-only for these tests. Instead the store lives on a real 64 KiB tmpfs mounted for
the test (root may mount): ``mount -o remount,ro`` makes it read-only (EROFS for root
too) and a filler file makes it full (ENOSPC). Where mounting is not permitted (an
unprivileged container), the same tests run with ``os.fsync`` failing with that errno
instead: the write path still creates, writes and cleans up a real temp file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_harness import LoopWatch, hammer, log

import helpers
from helpers import IdpFactory
from tokenfleet import FileStore, Retry, StoreError, TokenManager
from tokenfleet.stores import _codec
from tokenfleet.testing import DevAuthServer

pytestmark = pytest.mark.slow

LIFETIME = 2.0
CLIENT = {"retry": Retry(attempts=2, backoff=0.1), "timeout": 2.0}


class TinyFs:
    """A 64 KiB tmpfs at ``path`` (or, without mount rights, a simulated one)."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self._monkeypatch = monkeypatch
        path.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", "size=64k,mode=700", "tmpfs", str(path)]
        self.mounted = subprocess.run(command, capture_output=True).returncode == 0
        self._filler = path / "filler"

    def _fail_fsync(self, code: int) -> None:
        def fsync(fd: int) -> None:
            raise OSError(code, os.strerror(code))

        self._monkeypatch.setattr(os, "fsync", fsync)

    def read_only(self, on: bool) -> None:
        if not self.mounted:
            self._fail_fsync(errno.EROFS) if on else self._monkeypatch.undo()
            return
        option = "remount,ro" if on else "remount,rw"
        subprocess.run(["mount", "-o", option, str(self.path)], check=True)

    def full(self, on: bool) -> None:
        if not self.mounted:
            self._fail_fsync(errno.ENOSPC) if on else self._monkeypatch.undo()
            return
        if not on:
            self._filler.unlink()
            return
        with self._filler.open("wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:  # until ENOSPC
                filler.write(b"\0" * 4096)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def tiny_fs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TinyFs]:
    fs = TinyFs(tmp_path / "fs", monkeypatch)
    try:
        yield fs
    finally:
        monkeypatch.undo()
        fs.unmount()


@pytest.fixture(scope="module")
def idp(module_idp_factory: IdpFactory) -> DevAuthServer:
    return module_idp_factory(token_lifetime=LIFETIME)


def manager_for(idp: DevAuthServer, path: Path, **kw: Any) -> TokenManager:
    """A manager on a FileStore at ``path``, with this file's retry and backoff."""
    kw.setdefault("min_backoff", 0.3)
    return helpers.manager_for(idp, FileStore(path), client=CLIENT, **kw)


def assert_not_torn(directory: Path) -> None:
    """Every token file decodes whole; no temp file is left behind."""
    names = [p.name for p in directory.iterdir()]
    assert not [n for n in names if n.endswith(".tmp")], names
    for path in directory.glob("*.tok"):
        assert not isinstance(_codec.decode_entry(path.read_bytes()), str), path


async def run_fault(idp: DevAuthServer, fs: TinyFs, fault: str, loop_watch: LoopWatch) -> None:
    store = fs.path / "tokens"
    async with manager_for(idp, store) as first:
        await first.get_token()  # a token file exists
    toggle = fs.read_only if fault == "read-only" else fs.full
    idp.reset_counters()
    async with manager_for(idp, store) as manager:
        toggle(True)
        try:
            result = await hammer(manager, 5.0, callers=300)
            log.warning("file %s (%s): %s", fault, fs.mounted and "tmpfs", result.summary())
            assert not result.errors and not result.expired and result.calls > 3000
            assert len(result.tokens) >= 3  # refreshed without being able to write
            assert_not_torn(store)
            async with manager_for(idp, store, fail_open=False) as closed:
                with pytest.raises(StoreError, match="FileStore: cannot"):
                    await asyncio.sleep(LIFETIME)  # the file on disk is expired by now
                    await closed.get_token()
        finally:
            toggle(False)
    # writable again: two processes share one token
    before = idp.token_requests()
    async with manager_for(idp, store) as a, manager_for(idp, store) as b:
        assert await a.get_token() == await b.get_token()
    assert idp.token_requests() - before <= 1
    assert_not_torn(store)


async def test_read_only_directory(
    idp: DevAuthServer, tiny_fs: TinyFs, loop_watch: LoopWatch
) -> None:
    await run_fault(idp, tiny_fs, "read-only", loop_watch)


async def test_disk_full(idp: DevAuthServer, tiny_fs: TinyFs, loop_watch: LoopWatch) -> None:
    await run_fault(idp, tiny_fs, "disk-full", loop_watch)


async def test_stale_lock_and_leftovers_of_a_crash(idp: DevAuthServer, tmp_path: Path) -> None:
    """A crashed process leaves its lock file, a temp file and a moved-aside file."""
    store = FileStore(tmp_path / "tokens")
    async with manager_for(idp, tmp_path / "tokens") as probe:
        key = probe.cache_key()
    for leftover, data in [
        (store._file(key, ".lock"), b"pid 12345"),
        (store.path / ".abc123.tmp", b"\x94\x01half a tok"),
        (store.path / f".{store._file(key, '.tok').name}.999.1.del", b"junk"),
    ]:
        leftover.write_bytes(data)
        leftover.chmod(0o600)
    idp.reset_counters()
    started = time.monotonic()
    async with manager_for(idp, tmp_path / "tokens") as manager:
        assert await manager.get_token()
    assert time.monotonic() - started < 2.0  # flock is not a file's existence: no wait
    assert idp.token_requests() == 1
    await store.aclose()


async def test_a_stuck_lock_holder_delays_by_lock_timeout_only(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    """A live process holds the flock and never lets go: we wait lock_timeout, then fetch."""
    store = FileStore(tmp_path / "tokens")
    async with manager_for(idp, store.path) as probe:
        lock = store._file(probe.cache_key(), ".lock")
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(  # noqa: ASYNC220 - the holder must be another process
        [sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        async with manager_for(idp, store.path, lock_timeout=1.0) as manager:
            assert await manager.get_token()
            assert manager.stats.lock_timeouts == 1
        assert 0.9 < time.monotonic() - started < 5.0
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
        await store.aclose()
