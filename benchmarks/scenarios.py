"""Benchmark scenarios. Each runs in a fresh process and prints one JSON object.

Run them through ``run.py``, which repeats them, interleaves them and prints the table.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _support import dev_server, redis_server

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


async def redis_store(calls: int = 5_000, rounds: int = 5) -> Result:
    """RedisStore: with the near cache (ns) beside MemoryStore; without it (µs) beside a
    bare redis-py GET of the same key, interleaved, in one process."""
    import tempfile

    import redis.asyncio as aioredis

    with (
        tempfile.TemporaryDirectory() as workdir,
        redis_server(workdir) as url,
        dev_server(latency=0.0) as server,
    ):
        memory = tokenfleet.TokenManager(_client(server))
        near = tokenfleet.TokenManager(_client(server), store=tokenfleet.RedisStore(url))
        direct = tokenfleet.TokenManager(
            _client(server), store=tokenfleet.RedisStore(url), near_cache=False
        )
        bare = aioredis.Redis.from_url(url)
        for manager in (memory, near, direct):
            await manager.get_token()
        key = "tokenfleet:{" + near.cache_key() + "}"

        async def bare_get() -> object:
            return await bare.get(key)

        columns: dict[str, list[float]] = {
            "memory_ns": [],
            "near_ns": [],
            "direct_ns": [],
            "bare_get_ns": [],
        }
        for _ in range(rounds):
            columns["memory_ns"].append(await _per_call_ns(memory.get_token, calls * 20))
            columns["near_ns"].append(await _per_call_ns(near.get_token, calls * 20))
            columns["bare_get_ns"].append(await _per_call_ns(bare_get, calls))
            columns["direct_ns"].append(await _per_call_ns(direct.get_token, calls))
        for manager in (memory, near, direct):
            await manager.aclose()
        await bare.aclose()
    return {name: min(values) for name, values in columns.items()}


async def fleet(processes: int = 4, coroutines: int = 250) -> Result:
    """``processes`` × ``coroutines``, cold, sharing a FileStore and then a RedisStore."""
    import tempfile

    result: Result = {"processes": processes, "coroutines": coroutines}
    with tempfile.TemporaryDirectory() as workdir, redis_server(workdir) as redis_url:
        for name, store_url in (("file", f"file://{workdir}/tokens"), ("redis", redis_url)):
            with dev_server(latency=0.02) as server:
                start_at = time.time() + 3.0  # every worker imports, then starts together
                workers = [
                    subprocess.Popen(  # noqa: ASYNC220 - a one-off start, before timing
                        [
                            sys.executable,
                            __file__,
                            "fleet_worker",
                            store_url,
                            server.token_url,
                            server.client_id,
                            server.client_secret,
                            str(coroutines),
                            str(start_at),
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for _ in range(processes)
                ]
                outputs = [json.loads(w.communicate(timeout=120)[0]) for w in workers]
                result[f"{name}_requests"] = server.stats()["token_requests"]
                result[f"{name}_errors"] = sum(o["errors"] for o in outputs)
    return result


async def _fleet_worker(
    store_url: str, token_url: str, client_id: str, secret: str, coroutines: str, start_at: str
) -> Result:
    client = tokenfleet.ClientCredentials(token_url, client_id=client_id, client_secret=secret)
    async with tokenfleet.TokenManager(client, store=tokenfleet.store_from_url(store_url)) as m:
        await asyncio.sleep(max(0.0, float(start_at) - time.time()))
        results = await asyncio.gather(
            *(m.get_token() for _ in range(int(coroutines))), return_exceptions=True
        )
    return {"errors": sum(isinstance(r, BaseException) for r in results)}


SCENARIOS: dict[str, Callable[..., Awaitable[Result]]] = {
    "redis": redis_store,
    "fleet": fleet,
    "warm": warm,
    "herd": herd,
    "refresh": refresh,
}


def main() -> None:
    name, *args = sys.argv[1:]
    if name == "fleet_worker":
        result = asyncio.run(_fleet_worker(*args))
    else:
        result = asyncio.run(SCENARIOS[name](*(int(a) for a in args)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
