"""Fuzzing what sits at a FileStore file's path: a regular file of random bytes, a FIFO,
a directory, a socket, a symlink (to a file, a directory, nowhere).

Reading a token or a cooldown and taking the lock give a result (a miss, a token, a
cooldown, the lock) or a ``StoreError``, never a hang (each operation runs in a thread
that must end within seconds) and never an exception from outside tokenfleet.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenfleet import StoreError
from tokenfleet.stores import FileStore

KINDS = ["bytes", "fifo", "directory", "socket", "link-file", "link-dir", "link-nowhere"]


def plant(path: Path, kind: str, data: bytes) -> None:
    elsewhere = path.parent.parent / "elsewhere"
    if kind == "bytes":
        path.write_bytes(data)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a socket's path is limited to 108 bytes
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(path.name)
        finally:
            os.chdir(here)
    elif kind == "link-file":
        elsewhere.write_bytes(data)
        path.symlink_to(elsewhere)
    elif kind == "link-dir":
        elsewhere.mkdir()
        path.symlink_to(elsewhere)
    else:
        path.symlink_to(elsewhere)  # nothing there


def clear(path: Path) -> None:
    for victim in (path, path.parent.parent / "elsewhere"):
        if victim.is_dir() and not victim.is_symlink():
            shutil.rmtree(victim)
        elif victim.is_symlink() or victim.exists():
            victim.unlink()


async def operate(store: FileStore, operation: str) -> object:
    if operation == "get":
        return await store.get("k")
    if operation == "get_cooldown":
        return await store.get_cooldown("k")
    async with store.lock("k", timeout=0.5) as held:
        return held


SUFFIX = {"get": ".tok", "get_cooldown": ".cooldown", "lock": ".lock"}


def test_whatever_sits_at_a_store_path_gives_a_result_or_a_store_error(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.sampled_from(list(SUFFIX)),
        st.sampled_from(KINDS),
        st.binary(max_size=200),
    )
    def check(operation: str, kind: str, data: bytes) -> None:
        path = store._file("k", SUFFIX[operation])
        plant(path, kind, data)
        outcome: list[object] = []

        def run() -> None:
            try:
                outcome.append(asyncio.run(operate(store, operation)))
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(10)
        hung = worker.is_alive()
        if hung and kind == "fifo":  # let the thread end before failing
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(5)
        clear(path)
        assert not hung, f"{operation} hung on a {kind}"
        [result] = outcome
        if isinstance(result, BaseException):
            assert isinstance(result, StoreError), repr(result)
            assert "FileStore: " in str(result)
        elif operation == "get":
            assert result is None  # nothing we wrote: random bytes are a miss

    check()
