"""Scenario 5: ``processes`` × ``coroutines``, cold, each coroutine making one
authenticated request; tokens shared the way the library offers (or not at all)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _support import BOUND, dev_server, redis_server
from contenders import Setup, load

MEASURE = Path(__file__).resolve().parent.parent / "measure.py"


def _share(sharing: str, workdir: str, stack: ExitStack) -> str | None:
    if sharing == "none":
        return None
    if sharing == "file":
        return f"file://{workdir}/tokens"
    if sharing == "redis":
        return stack.enter_context(redis_server(workdir))
    if sharing == "jsonfile":
        return f"{workdir}/tokens.json"
    raise ValueError(f"unknown sharing {sharing!r}")


async def run(
    name: str, sharing: str, latency: float, processes: int = 4, coroutines: int = 250
) -> dict[str, Any]:
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory())
        share = _share(sharing, workdir, stack)
        server = stack.enter_context(dev_server(latency=latency))
        setup = Setup.of(server, share=share)
        start_at = time.time() + 3.0  # every worker imports and connects, then starts together
        config = json.dumps({**setup.__dict__, "client_secret": None})
        command = [sys.executable, str(MEASURE), "fleet_worker", name, config]
        command += [str(coroutines), str(start_at)]
        workers = [
            subprocess.Popen(  # noqa: ASYNC220 - started before anything is timed
                command,
                stdout=subprocess.PIPE,
                text=True,
                # the secret goes through the environment, never argv (ps shows argv)
                env={**os.environ, "BENCH_CLIENT_SECRET": setup.client_secret},
            )
            for _ in range(processes)
        ]
        outputs = []
        try:
            for worker in workers:
                out, _ = worker.communicate(timeout=BOUND / 4)
                outputs.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for worker in workers:  # only our own workers, by handle, if any is left
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(timeout=10)
        return {
            "token_requests": server.stats()["token_requests"],
            "errors": sum(o["errors"] for o in outputs),
        }


async def worker(name: str, config: str, coroutines: str, start_at: str) -> dict[str, Any]:
    fields = json.loads(config)
    fields["client_secret"] = os.environ["BENCH_CLIENT_SECRET"]
    async with load(name)(Setup(**fields)) as contender:
        await asyncio.sleep(max(0.0, float(start_at) - time.time()))
        await contender.prepare()
        results = await asyncio.gather(
            *(contender.call() for _ in range(int(coroutines))), return_exceptions=True
        )
    return {"errors": sum(r != 200 for r in results)}
