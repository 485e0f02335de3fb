"""Scenario 1: ``size`` coroutines each make one authenticated request at the same
instant, with an empty cache."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _support import dev_server
from contenders import Setup, load

HERD_BOUND = 90.0  # seconds; callers still waiting then are cancelled and counted


async def run(name: str, size: int, latency: float) -> dict[str, Any]:
    with dev_server(latency=latency) as server:
        async with load(name)(Setup.of(server)) as contender:
            gate = asyncio.Event()

            async def caller() -> int:
                await gate.wait()
                return await contender.call()

            tasks = [asyncio.create_task(caller()) for _ in range(size)]
            await asyncio.sleep(0)
            started = time.perf_counter()
            await contender.prepare()  # Authlib's fetch_token(); nothing for the others
            gate.set()
            done, pending = await asyncio.wait(tasks, timeout=HERD_BOUND)
            wall = time.perf_counter() - started
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        results = [t.exception() or t.result() for t in done if not t.cancelled()]
        kinds: dict[str, int] = {}
        for result in results:
            kind = f"HTTP {result}" if isinstance(result, int) else type(result).__name__
            kinds[kind] = kinds.get(kind, 0) + 1
        return {
            "outcomes": kinds,
            "token_requests": server.stats()["token_requests"],
            "errors": len(pending) + sum(r != 200 for r in results),
            "unfinished": len(pending),
            "wall_ms": wall * 1000,
        }
