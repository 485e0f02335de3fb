"""Scenario 8, tokenfleet alone: a fleet of ``members`` independent fleet members (each
its own ``TokenManager``, store connection and near cache, standing for one process of
a real fleet) spread over ``processes`` worker processes, on RedisStore or FileStore.

Phases, in one run (each phase on its own scope, so its cache key starts cold):

- cold: every member asks at the same instant, nothing cached anywhere;
- floor: the same, but the token is already in the store (no coordination needed);
- invalidation: every member asks every ~100 ms with its token warm; one member
  invalidates it; every member must switch to the replacement;
- idle: no calls for a few seconds: the CPU that warm, idle members cost.

"Landed → last served" is the time from the first member served (the fetcher, served
once its token is in the store and its lock released) to the last: from the moment the
token is there for every member to take, to the last member that has it. The floor's
counterpart is "asked → last served" of a fleet whose token is already in the store:
there the token is there to take from the moment every member asks. (The floor's
"first → last served" is also reported: it leaves out the time members spend sending
their reads before the first answer comes back, so it is the stricter comparison.)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import selectors
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _support import BOUND, dev_server, redis_server

import tokenfleet

MEASURE = Path(__file__).resolve().parent.parent / "measure.py"
ASK_EVERY = 0.1  # seconds between two calls of a member in the invalidation phase
IDLE = 5.0  # seconds of the idle phase


# ---------------------------------------------------------------------- the coordinator


class Workers:
    """The worker processes; one JSON line out per command in."""

    def __init__(self, config: dict[str, Any], processes: int, secret: str) -> None:
        per = [
            config["members"] // processes + (i < config["members"] % processes)
            for i in range(processes)
        ]
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(MEASURE),
                    "fleet_scale_worker",
                    json.dumps({**config, "members": n, "index": i}),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "BENCH_CLIENT_SECRET": secret},  # never argv
            )
            for i, n in enumerate(per)
        ]

    def ask(self, command: dict[str, Any], timeout: float = BOUND / 4) -> list[dict[str, Any]]:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()
        return [self._line(proc, timeout) for proc in self.procs]

    def _line(self, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError(f"a fleet worker did not answer within {timeout:.0f} s")
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("a fleet worker exited")
        return json.loads(line)  # type: ignore[no-any-return]

    def stop(self) -> None:
        for proc in self.procs:  # only our own workers, by handle
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


class Commands:
    """Redis ``INFO commandstats`` deltas (calls), or nothing for a file store."""

    def __init__(self, url: str | None) -> None:
        import redis

        self._client = redis.Redis.from_url(url) if url else None

    def reset(self) -> None:
        if self._client is not None:
            self._client.config_resetstat()

    def count(self) -> int | None:
        if self._client is None:
            return None
        stats = self._client.info("commandstats")
        if os.environ.get("BENCH_DEBUG"):
            print({k: v["calls"] for k, v in stats.items()}, file=sys.stderr)
        return sum(
            int(v["calls"])
            for k, v in stats.items()
            if not k.startswith(("cmdstat_config", "cmdstat_info"))
        )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _summary(
    replies: list[dict[str, Any]], requests: int, commands: int | None, members: int, at: float
) -> dict[str, Any]:
    served = [t for r in replies for t in r["served"]]
    latency = [t for r in replies for t in r["latency"]]
    return {
        "requests": requests,
        "spread_ms": (max(served) - min(served)) * 1000 if served else float("nan"),
        "first_ms": (min(served) - at) * 1000 if served else float("nan"),
        "last_ms": (max(served) - at) * 1000 if served else float("nan"),
        "p50_ms": _pct(latency, 0.5) * 1000,
        "p99_ms": _pct(latency, 0.99) * 1000,
        "max_ms": max(latency, default=float("nan")) * 1000,
        "commands": None if commands is None else commands / members,
        "errors": sum(r["errors"] for r in replies),
        "served": len(served),
    }


async def run(
    store: str, latency: float, members: int = 1000, processes: int = 8
) -> dict[str, Any]:
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory())
        redis_url = stack.enter_context(redis_server(workdir)) if store == "redis" else None
        url = redis_url or f"file://{workdir}/tokens"
        server = stack.enter_context(dev_server(latency=latency))
        config = {"token_url": server.token_url, "client_id": server.client_id, "store": url}
        workers = Workers({**config, "members": members}, processes, server.client_secret)
        stack.callback(workers.stop)
        commands = Commands(redis_url)
        workers.ask({"phase": "ready"}, timeout=BOUND / 4)
        result: dict[str, Any] = {"members": members, "processes": processes}

        def phase(name: str, **extra: Any) -> dict[str, Any]:
            commands.reset()
            before = _requests(server)
            at = time.time() + 1.0
            replies = workers.ask({"phase": name, "at": at, **extra})
            requests = _requests(server) - before
            return _summary(replies, requests, commands.count(), members, at)

        # The floor's token, outside every count; it also warms the server up (its first
        # token costs a key and a JIT-cold process: not the fleet's doing).
        await _seed(config, server.client_secret, "floor")
        # Every member connects to the store and starts listening (a fleet's processes
        # are up before they get a request): the cold phase measures coordination only.
        await _seed(config, server.client_secret, "warmup")
        workers.ask({"phase": "warmup", "at": time.time()})
        result["cold"] = phase("cold")
        result["floor"] = phase("floor")
        result["invalidation"] = phase("invalidation", duration=3.0)
        idle = workers.ask({"phase": "idle", "duration": IDLE}, timeout=IDLE + 60)
        result["idle_core"] = sum(r["cpu"] for r in idle) / IDLE  # fraction of one core
        workers.ask({"phase": "quit"}, timeout=60)
        return _flat(result)


def _requests(server: Any) -> int:
    """Token requests the dev server saw (asked again if a loaded machine delays it)."""
    for attempt in range(5):
        try:
            return int(server.stats()["token_requests"])
        except OSError:
            if attempt == 4:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    """``{"cold": {"requests": 1}}`` → ``{"cold_requests": 1}`` (the table's columns)."""
    flat: dict[str, Any] = {}
    for name, value in result.items():
        if isinstance(value, dict):
            flat.update({f"{name}_{k}": v for k, v in value.items()})
        else:
            flat[name] = value
    return flat


async def _seed(config: dict[str, Any], secret: str, scope: str) -> None:
    client = tokenfleet.ClientCredentials(
        config["token_url"], client_id=config["client_id"], client_secret=secret
    )
    async with tokenfleet.TokenManager(
        client, store=tokenfleet.store_from_url(config["store"])
    ) as manager:
        await manager.get_token(scope)


# ---------------------------------------------------------------------- a worker


async def worker(config_json: str) -> None:
    """Builds its members, then runs each command read from stdin (one JSON line each)."""
    config = json.loads(config_json)
    secret = os.environ["BENCH_CLIENT_SECRET"]
    members = [
        tokenfleet.TokenManager(
            tokenfleet.ClientCredentials(
                config["token_url"], client_id=config["client_id"], client_secret=secret
            ),
            store=tokenfleet.store_from_url(config["store"]),
        )
        for _ in range(config["members"])
    ]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            command = json.loads(line)
            if command["phase"] == "quit":
                _reply({})
                return
            _reply(await _phase(members, command, first=config["index"] == 0))
    finally:
        await asyncio.gather(*(m.aclose() for m in members), return_exceptions=True)


async def _phase(
    members: list[tokenfleet.TokenManager], command: dict[str, Any], first: bool
) -> dict[str, Any]:
    name = command["phase"]
    if name == "ready":
        return {}
    if name == "idle":
        started = time.process_time()
        await asyncio.sleep(command["duration"])
        return {"cpu": time.process_time() - started}
    await asyncio.sleep(max(0.0, command["at"] - time.time()))
    if name in ("cold", "floor", "warmup"):
        outcomes = await asyncio.gather(*(_ask(m, name) for m in members))
        return _collect(outcomes)
    return await _invalidation(members, command, first)


async def _ask(member: tokenfleet.TokenManager, scope: str) -> tuple[float, float] | None:
    started = time.monotonic()
    try:
        await member.get_token(scope)
    except tokenfleet.TokenFleetError:
        return None
    return time.time(), time.monotonic() - started


def _collect(outcomes: list[tuple[float, float] | None]) -> dict[str, Any]:
    done = [o for o in outcomes if o is not None]
    return {
        "served": [o[0] for o in done],
        "latency": [o[1] for o in done],
        "errors": len(outcomes) - len(done),
    }


async def _invalidation(
    members: list[tokenfleet.TokenManager], command: dict[str, Any], first: bool
) -> dict[str, Any]:
    """Every member asks every ~100 ms; member 0 of worker 0 invalidates at once."""
    old = {id(m): (await m.get_token("cold")).access_token for m in members}
    end = time.monotonic() + command["duration"]
    switched: dict[int, float] = {}
    latency: list[float] = []
    errors = 0

    async def asker(member: tokenfleet.TokenManager) -> None:
        nonlocal errors
        await asyncio.sleep(random.uniform(0, ASK_EVERY))
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                token = await member.get_token("cold")
            except tokenfleet.TokenFleetError:
                errors += 1
            else:
                latency.append(time.monotonic() - started)
                if token.access_token != old[id(member)] and id(member) not in switched:
                    switched[id(member)] = time.time()
            await asyncio.sleep(ASK_EVERY)

    if first:
        await members[0].invalidate(await members[0].get_token("cold"))
    await asyncio.gather(*(asker(m) for m in members))
    return {
        "served": list(switched.values()),
        "latency": latency,
        "errors": errors + len(members) - len(switched),
    }


def _reply(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)
