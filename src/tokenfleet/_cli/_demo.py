"""``tokenfleet demo``: a fleet of processes sharing one token, on an embedded server.

The dev authorization server runs in a thread of this process; W worker processes
(``_demo_worker``) × C coroutines call ``get_token`` in a loop for a few token
lifetimes, sharing a store. At the end: a table per process, and the point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .._check.probes import check_store
from .._exceptions import ConfigurationError, StoreError
from .._util.redact import redact_url
from ..testing import DevAuthServer
from ._demo_view import LEGEND, Progress, WorkerResult, point, table
from ._output import out

__all__ = ["add_parser", "run"]

_START_TIMEOUT = 120.0  # seconds for every worker to import and get ready (slow CI hosts)
_LINE_LIMIT = 1 << 20


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo``."""
    parser = commands.add_parser(
        "demo",
        help="W processes × C coroutines share one token (embedded server)",
        description="Start the dev authorization server, then W worker processes × C "
        "coroutines calling get_token in a loop for a few token lifetimes, sharing a store. "
        "Prints a table per process: calls, cache hits, token requests, latency.",
    )
    add = parser.add_argument
    add("-w", "--workers", type=int, default=4, help="worker processes (default 4)")
    add("-c", "--coroutines", type=int, default=500, help="coroutines per process (default 500)")
    add(
        "-d",
        "--duration",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long the callers run (default 10)",
    )
    add(
        "--lifetime",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="token lifetime at the server (default 3, so several refreshes happen)",
    )
    add(
        "--latency",
        type=float,
        default=0.05,
        metavar="SECONDS",
        help="token endpoint delay (default 0.05)",
    )
    add(
        "--store",
        default="file",
        metavar="STORE",
        help="file (default: a temporary directory), memory (one cache per process: see "
        "the requests multiply), or a URL: file:///path, redis://host:6379/0",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its table."""
    _validate(args)
    with (
        _store_url(args.store) as store_url,
        DevAuthServer(token_lifetime=args.lifetime, latency=args.latency).run_in_thread() as idp,
    ):
        _check_store(store_url)
        out(
            f"tokenfleet demo: {args.workers} processes × {args.coroutines:,} coroutines for "
            f"{args.duration:g} s, {args.lifetime:g} s tokens from {idp.token_url}, "
            f"store {redact_url(store_url)}"
        )
        results = asyncio.run(_Fleet(args, idp, store_url).run())
        requests = idp.token_requests()
    out()
    for line in table(results, args.coroutines):
        out(line)
    for line in LEGEND:
        out(f"  {line}")
    out(f"the authorization server saw {requests:,} token requests")
    out()
    shared = not store_url.startswith("memory:")
    out(point(results, args.coroutines, requests, shared, args.lifetime))
    return 0 if not any(r.errors for r in results) else 1


def _check_store(store_url: str) -> None:
    """A store that is down would make every worker fetch on its own (fail-open), and the
    demo would show nothing shared: say so and stop instead (exit 4)."""
    if store_url.startswith("memory:"):
        return
    result = asyncio.run(check_store(store_url))
    if result.ok is False:
        raise StoreError(f"--store {result.detail}; {result.fix}")


def _validate(args: argparse.Namespace) -> None:
    if args.workers < 1 or args.coroutines < 1:
        raise ConfigurationError("--workers and --coroutines must be at least 1")
    if args.duration <= 0 or args.lifetime <= 0 or args.latency < 0:
        raise ConfigurationError("--duration and --lifetime must be > 0, --latency >= 0")


@contextlib.contextmanager
def _store_url(choice: str) -> Iterator[str]:
    """``file`` -> a fresh private directory (removed after), ``memory`` -> memory://."""
    if choice == "memory":
        yield "memory://"
    elif choice == "file":
        directory = tempfile.mkdtemp(prefix="tokenfleet-demo-")  # mode 0700
        try:
            yield f"file://{directory}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    elif "://" in choice:
        yield choice
    else:
        raise ConfigurationError(
            f"--store {choice!r}: use file, memory, or a URL (file:///path, redis://host/0)"
        )


@dataclass
class _Worker:
    """A worker process and what it told us."""

    process: asyncio.subprocess.Process
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0
    done: dict[str, Any] | None = None
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=5))

    async def read_stdout(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            message = json.loads(raw)
            if message["kind"] == "ready":
                self.ready.set()
            elif message["kind"] == "progress":
                self.calls = message["calls"]
            elif message["kind"] == "done":
                self.calls, self.done = message["calls"], message

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.stderr.append(raw.decode(errors="replace").strip())

    def failure(self, index: int) -> str:
        last = next((line for line in reversed(self.stderr) if line), "no message")
        return f"demo worker {index} exited with code {self.process.returncode}: {last}"


class _Fleet:
    """Starts the workers, releases them together, shows progress, collects results."""

    def __init__(self, args: argparse.Namespace, idp: DevAuthServer, store_url: str) -> None:
        self.args = args
        self.idp = idp
        self.store_url = store_url
        self.workers: list[_Worker] = []

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TOKENFLEET_TOKEN_URL": self.idp.token_url,
            "TOKENFLEET_CLIENT_ID": self.idp.client_id,
            "TOKENFLEET_CLIENT_SECRET": self.idp.client_secret,  # env, not argv (ps)
        }

    async def _spawn(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tokenfleet._cli._demo_worker",
            "--store",
            self.store_url,
            "--coroutines",
            str(self.args.coroutines),
            "--duration",
            str(self.args.duration),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env(),
            limit=_LINE_LIMIT,
        )
        return _Worker(process)

    async def run(self) -> list[WorkerResult]:
        try:
            self.workers = [await self._spawn() for _ in range(self.args.workers)]
            readers = [
                asyncio.create_task(reader())
                for w in self.workers
                for reader in (w.read_stdout, w.read_stderr)
            ]
            await self._wait_ready()
            await self._go()
            await self._watch()
            await asyncio.gather(*readers)
            return self._results()
        finally:
            await self._stop_all()

    async def _wait_ready(self) -> None:
        out(f"starting {len(self.workers)} worker processes ...")
        waits = [asyncio.create_task(w.ready.wait()) for w in self.workers]
        exits = [asyncio.create_task(w.process.wait()) for w in self.workers]
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                while not all(t.done() for t in waits):
                    await asyncio.wait(waits + exits, return_when=asyncio.FIRST_COMPLETED)
                    self._raise_if_exited()
        finally:
            for task in waits + exits:
                task.cancel()

    def _raise_if_exited(self) -> None:
        for index, worker in enumerate(self.workers, 1):
            if worker.process.returncode is not None and worker.done is None:
                raise RuntimeError(worker.failure(index))

    async def _go(self) -> None:
        for worker in self.workers:
            assert worker.process.stdin is not None
            worker.process.stdin.write(b"go\n")
            await worker.process.stdin.drain()

    async def _watch(self) -> None:
        progress = Progress(self.args.duration)
        started = time.monotonic()
        exits = asyncio.gather(*(w.process.wait() for w in self.workers))
        try:
            while not exits.done():
                calls = sum(w.calls for w in self.workers)
                progress.show(time.monotonic() - started, calls, self.idp.token_requests())
                await asyncio.wait([exits], timeout=0.2)
            calls = sum(w.calls for w in self.workers)
            elapsed = time.monotonic() - started
            progress.show(elapsed, calls, self.idp.token_requests(), final=True)
        finally:
            progress.close()

    def _results(self) -> list[WorkerResult]:
        results = []
        for index, worker in enumerate(self.workers, 1):
            if worker.done is None:
                raise RuntimeError(worker.failure(index))
            results.append(WorkerResult.from_message(worker.done))
        return results

    async def _stop_all(self) -> None:
        for worker in self.workers:
            if worker.process.returncode is None:
                worker.process.kill()
            await worker.process.wait()
