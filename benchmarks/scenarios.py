"""Benchmark scenarios. Each runs in a fresh process and prints one JSON object.

Run them through ``run.py``, which repeats them, interleaves them and prints the table.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _support import dev_server

import tokenfleet

Result = dict[str, Any]


def _client(server: Any) -> tokenfleet.ClientCredentials:
    return tokenfleet.ClientCredentials(
        server.token_url, client_id=server.client_id, client_secret=server.client_secret
    )


async def _per_call_ns(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        await call()
    return (time.perf_counter_ns() - started) / calls


async def warm(calls: int = 200_000, rounds: int = 7) -> Result:
    """Warm get_token() (MemoryStore) beside a coroutine that only returns a dict value."""
    table = {"token": object()}

    async def baseline() -> object:
        return table["token"]

    with dev_server(latency=0.0) as server:
        async with tokenfleet.TokenManager(_client(server)) as manager:
            await manager.get_token()
            base, ours = [], []
            for _ in range(rounds):  # interleaved, so drift hits both alike
                base.append(await _per_call_ns(baseline, calls))
                ours.append(await _per_call_ns(manager.get_token, calls))
    return {
        "baseline_ns": min(base),
        "get_token_ns": min(ours),
        "baseline_all": base,
        "get_token_all": ours,
    }


async def herd(size: int) -> Result:
    """``size`` coroutines ask a cold manager at the same instant."""
    with dev_server(latency=0.02) as server:
        async with tokenfleet.TokenManager(_client(server)) as manager:
            gate = asyncio.Event()

            async def caller() -> str:
                await gate.wait()
                return (await manager.get_token()).access_token

            tasks = [asyncio.create_task(caller()) for _ in range(size)]
            await asyncio.sleep(0)
            started = time.perf_counter()
            gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            wall = time.perf_counter() - started
        errors = sum(isinstance(r, BaseException) for r in results)
        return {
            "size": size,
            "requests": server.stats()["token_requests"],
            "errors": errors,
            "distinct_tokens": len({r for r in results if isinstance(r, str)}),
            "wall_ms": wall * 1000,
        }


async def refresh(callers: int = 1000, lifetime: float = 2.0, seconds: float = 8.0) -> Result:
    """Callers loop across several refreshes; how long does the slowest call take?"""
    latency = 0.02
    with dev_server(lifetime=lifetime, latency=latency) as server:
        async with tokenfleet.TokenManager(_client(server)) as manager:
            await manager.get_token()
            deadline = time.monotonic() + seconds
            slowest = 0.0
            expired = 0

            async def caller() -> None:
                nonlocal slowest, expired
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    token = await manager.get_token()
                    slowest = max(slowest, time.perf_counter() - started)
                    expired += token.expires_at <= time.time()
                    await asyncio.sleep(0.005)

            await asyncio.gather(*(caller() for _ in range(callers)))
            stats = manager.stats.as_dict()
        return {
            "slowest_ms": slowest * 1000,
            "server_latency_ms": latency * 1000,
            "requests": server.stats()["token_requests"],
            "expired": expired,
            "lifetimes": seconds / lifetime,
            "hits": stats["hits"],
        }


SCENARIOS: dict[str, Callable[..., Awaitable[Result]]] = {
    "warm": warm,
    "herd": herd,
    "refresh": refresh,
}


def main() -> None:
    name, *args = sys.argv[1:]
    result = asyncio.run(SCENARIOS[name](*(int(a) for a in args)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
