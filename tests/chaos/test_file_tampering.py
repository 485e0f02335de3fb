"""The file store while someone tampers with its directory and callers keep asking.

The hardening classes of tests/integration/test_file_store_safety.py, introduced while
300 callers loop on a manager: a FIFO, a directory, a socket or a symlink put in place of
the token file (again and again, since our next write replaces it); the store directory
swapped for another one, or for a symlink to one, after the store opened it; a parent made
writable by others. Promises: zero caller errors with ``fail_open`` (the default), a typed
``StoreError`` without it, never a hang (every wait is bounded), never the planted token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chaos_harness import LoopWatch, hammer, log

import helpers
from helpers import IdpFactory
from tokenfleet import ConfigurationError, FileStore, Retry, StoreError, Token, TokenManager
from tokenfleet.testing import DevAuthServer

pytestmark = pytest.mark.slow

LIFETIME = 1.5
CLIENT = {"retry": Retry(attempts=2, backoff=0.1), "timeout": 2.0}


@pytest.fixture(scope="module")
def idp(module_idp_factory: IdpFactory) -> DevAuthServer:
    return module_idp_factory(token_lifetime=LIFETIME)


def manager_for(idp: DevAuthServer, path: Path, **kw: Any) -> TokenManager:
    kw.setdefault("min_backoff", 0.3)
    return helpers.manager_for(idp, FileStore(path), client=CLIENT, **kw)


def bind_socket(path: Path) -> None:
    """A unix socket file at ``path`` (bound from its directory: sun_path is 108 bytes)."""
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path.name)
    finally:
        os.chdir(here)


def plant_fifo(path: Path) -> None:
    os.mkfifo(path, 0o600)


def plant_directory(path: Path) -> None:
    path.mkdir(mode=0o700)


def plant_symlink(path: Path) -> None:
    elsewhere = path.parent.parent / "elsewhere.tok"
    elsewhere.write_bytes(b"not ours")
    path.symlink_to(elsewhere)


PLANTS: dict[str, Callable[[Path], None]] = {
    "fifo": plant_fifo,
    "directory": plant_directory,
    "socket": bind_socket,
    "symlink": plant_symlink,
}


def replace_with(path: Path, plant: Callable[[Path], None]) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink()
    with contextlib.suppress(FileExistsError):  # our writer got there first: next round
        plant(path)


@pytest.mark.parametrize("kind", list(PLANTS))
async def test_a_non_regular_token_file_while_callers_loop(
    idp: DevAuthServer, tmp_path: Path, kind: str, loop_watch: LoopWatch
) -> None:
    store = tmp_path / "tokens"
    async with manager_for(idp, store) as probe:
        token_file = FileStore(store)._file(probe.cache_key(), ".tok")
    stop = asyncio.Event()

    async def saboteur() -> int:
        rounds = 0
        while not stop.is_set() and rounds < 100:  # bounded in count and time
            await asyncio.to_thread(replace_with, token_file, PLANTS[kind])
            rounds += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        return rounds

    async with manager_for(idp, store) as manager:
        sabotage = asyncio.create_task(saboteur())
        try:
            result = await hammer(manager, 4.0, callers=300)
        finally:
            stop.set()
            rounds = await asyncio.wait_for(sabotage, 10)
        log.warning("file %s in place of the token: %s", kind, result.summary())
        assert rounds > 10
        assert not result.errors and not result.expired and result.calls > 2000
        assert len(result.tokens) >= 2  # refreshed although the store failed
        assert manager.stats.store_errors >= 1, "the planted file was never read"

    replace_with(token_file, PLANTS[kind])
    async with manager_for(idp, store, fail_open=False) as closed:
        with pytest.raises(StoreError, match="FileStore: "):
            await asyncio.wait_for(closed.get_token(), 10)


@pytest.mark.parametrize("how", ["renamed", "symlinked"])
async def test_the_store_directory_swapped_while_callers_loop(
    idp: DevAuthServer, tmp_path: Path, how: str, loop_watch: LoopWatch
) -> None:
    store = tmp_path / "tokens"
    async with manager_for(idp, store) as probe:
        key = probe.cache_key()
    theirs = tmp_path / "theirs"
    planted = Token(access_token="planted", expires_at=time.time() + 600, issued_at=time.time())
    await FileStore(theirs).set(key, planted, 600)

    async def swap() -> None:
        await asyncio.sleep(1.0)
        store.rename(tmp_path / "moved")  # the store keeps its descriptor of this one
        if how == "renamed":
            theirs.rename(store)
        else:
            store.symlink_to(theirs)

    async with manager_for(idp, store) as manager:
        swapper = asyncio.create_task(swap())
        result = await hammer(manager, 4.0, callers=300)
        await asyncio.wait_for(swapper, 5)
        log.warning("store directory %s: %s", how, result.summary())
        assert not result.errors and not result.expired and result.calls > 2000
        assert len(result.tokens) >= 2
        assert planted.fingerprint not in result.tokens
    if how == "symlinked":
        with pytest.raises(ConfigurationError, match="symlink"):
            FileStore(store)


async def test_a_parent_made_writable_by_others_while_callers_loop(
    idp: DevAuthServer, tmp_path: Path, loop_watch: LoopWatch
) -> None:
    parent = tmp_path / "parent"
    store = parent / "tokens"
    async with manager_for(idp, store) as first:
        await first.get_token()

    async def open_up() -> None:
        await asyncio.sleep(1.0)
        parent.chmod(0o777)

    try:
        async with manager_for(idp, store) as manager:
            opener = asyncio.create_task(open_up())
            result = await hammer(manager, 3.0, callers=300)
            await asyncio.wait_for(opener, 5)
            log.warning("parent writable by others: %s", result.summary())
            assert not result.errors and not result.expired and result.calls > 1500
        with pytest.raises(ConfigurationError, match="writable by others"):
            FileStore(store)  # a new process refuses it; the running one kept its descriptor
    finally:
        parent.chmod(0o700)
        shutil.rmtree(tmp_path / "elsewhere", ignore_errors=True)
