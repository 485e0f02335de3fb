"""Scenario 2: 1,000 coroutines loop for 10 s over 2-second tokens.

Each caller makes one authenticated request, then sleeps ``pace`` seconds (after a
random first offset, so the load is spread: about ``callers / pace`` requests per
second). Counted: token requests seen by the server, requests whose final status was
401, retries the library did after a 401 (resource requests seen by the server minus
calls made), the slowest wait for a token inside a call, and the slowest whole call.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from _support import BOUND, dev_server
from contenders import Setup, load

MARGIN_RATIO = 0.2  # margin for libraries with an early-expiry setting: 20 % of the lifetime


async def run(
    name: str,
    latency: float,
    callers: int = 1000,
    lifetime: float = 2.0,
    seconds: float = 10.0,
    pace: float = 1.0,
) -> dict[str, Any]:
    with dev_server(lifetime=lifetime, latency=latency) as server:
        setup = Setup.of(server, margin=lifetime * MARGIN_RATIO)
        async with load(name)(setup) as contender:
            await contender.prepare()
            await contender.call()  # the first token: the herd below is warm
            contender.instrument()
            counts = {"calls": 0, "unauthorized": 0, "errors": 0}
            kinds: dict[str, int] = {}
            slowest = 0.0
            deadline = time.monotonic() + seconds

            async def caller() -> None:
                nonlocal slowest
                await asyncio.sleep(random.uniform(0, pace))
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    try:
                        status = await contender.call()
                    except Exception as exc:
                        counts["errors"] += 1
                        kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
                    else:
                        counts["unauthorized"] += status == 401
                        counts["errors"] += status not in (200, 401)
                    slowest = max(slowest, time.perf_counter() - started)
                    counts["calls"] += 1
                    await asyncio.sleep(pace)

            tasks = [asyncio.create_task(caller()) for _ in range(callers)]
            _, pending = await asyncio.wait(tasks, timeout=min(BOUND / 2, seconds + 20))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        stats = server.stats()
        return {
            **counts,
            "unfinished": len(pending),
            "token_requests": stats["token_requests"],
            # resource requests the server saw beyond one per completed call (and the
            # warm-up): the library's own retries after a 401
            "retries": max(
                0, stats["resource_requests"] - (counts["calls"] - counts["errors"]) - 1
            ),
            "slowest_wait_ms": contender.slowest_wait * 1000,
            "slowest_call_ms": slowest * 1000,
            "lifetimes": seconds / lifetime,
            "error_kinds": kinds,
        }
