"""One worker process of ``tokenfleet demo``: C coroutines calling ``get_token`` in a loop.

Started by the demo as ``python -m tokenfleet._cli._demo_worker``; the client secret
comes in the environment, never in argv. It speaks JSON lines on stdout: ``ready``, then
(after ``go`` on stdin) ``progress`` every quarter second, and ``done`` with its counters
and a latency histogram.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from array import array
from typing import Any

from .._client.credentials import ClientCredentials
from .._manager.manager import TokenManager
from ..stores import store_from_url
from ._histogram import Histogram

_PROGRESS_EVERY = 0.25


def emit(kind: str, **fields: Any) -> None:
    """One JSON line to the demo."""
    sys.stdout.write(json.dumps({"kind": kind, **fields}) + "\n")
    sys.stdout.flush()


class Worker:
    """The coroutines of one process and what they measured."""

    def __init__(self, manager: TokenManager, coroutines: int, duration: float) -> None:
        self.manager = manager
        self.coroutines = coroutines
        self.duration = duration
        self.samples: array[int] = array("q")
        self.errors = 0

    async def caller(self, deadline: float) -> None:
        """Ask for a token, note how long it took, let the others run; until ``deadline``."""
        get, clock, now = (
            self.manager.get_token,
            asyncio.get_running_loop().time,
            time.perf_counter_ns,
        )
        append = self.samples.append
        while clock() < deadline:
            started = now()
            try:
                await get()
            except Exception:  # noqa: BLE001 - counted and shown; the demo keeps going
                self.errors += 1
                await asyncio.sleep(0.05)
                continue
            append(now() - started)
            await asyncio.sleep(0)

    async def report(self) -> None:
        """``progress`` lines until cancelled."""
        while True:
            await asyncio.sleep(_PROGRESS_EVERY)
            emit("progress", calls=len(self.samples), fetches=self.manager.stats.fetches)

    async def run(self) -> None:
        """All coroutines for ``duration`` seconds, with progress reports."""
        deadline = asyncio.get_running_loop().time() + self.duration
        reporter = asyncio.create_task(self.report())
        try:
            await asyncio.gather(*(self.caller(deadline) for _ in range(self.coroutines)))
        finally:
            reporter.cancel()

    def result(self) -> dict[str, Any]:
        """The ``done`` fields."""
        stats = self.manager.stats
        return {
            "calls": len(self.samples),
            "errors": self.errors,
            "hits": stats.hits,
            "fetches": stats.fetches,
            "refreshes_ahead": stats.refreshes_ahead,
            "histogram": Histogram.of(self.samples).to_json(),
        }


async def main(args: argparse.Namespace) -> None:
    """Get ready, wait for ``go``, run, report."""
    env = os.environ
    client = ClientCredentials(
        env["TOKENFLEET_TOKEN_URL"],
        client_id=env["TOKENFLEET_CLIENT_ID"],
        client_secret=env["TOKENFLEET_CLIENT_SECRET"],
    )
    async with TokenManager(client, store=store_from_url(args.store)) as manager:
        worker = Worker(manager, args.coroutines, args.duration)
        emit("ready", pid=os.getpid())
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if line.strip() != "go":
            return
        await worker.run()
        emit("done", **worker.result())


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tokenfleet-demo-worker")
    parser.add_argument("--store", required=True)
    parser.add_argument("--coroutines", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(_parse(sys.argv[1:])))
