"""Scenario 3: sequential authenticated requests with a warm token, beside the same
requests through the same kind of client, same settings, with a fixed ``Authorization``
header and no auth library (so the server does the same work for both).

The two kinds alternate call by call (the order alternating per pair), each call timed
on its own; the ratio is the median bare call's time over the median authenticated
call's. The dev server shares the machine, whose speed changes for seconds at a time:
neighbouring calls see the same machine, where rounds of a few hundred calls did not.
Six runs of each method for tokenfleet + aiohttp (2026-12-01): rounds (25 of 200 calls
per kind) 0.975-1.009, call by call 1.003-1.006."""

from __future__ import annotations

import time
from typing import Any

from _support import dev_server, median
from contenders import Setup, fixed_authorization, load


async def run(name: str, latency: float, calls: int = 5000) -> dict[str, Any]:
    with dev_server(latency=latency) as server:
        setup = Setup.of(server)
        authorization = await fixed_authorization(setup)  # setup, not timed
        async with load(name)(setup) as contender:
            await contender.prepare()
            for _ in range(50):  # warm both clients' connections and first-use paths
                await contender.call()
                await contender.bare_call(authorization)
            spent: dict[str, list[float]] = {"auth": [], "bare": []}
            clock = time.perf_counter
            bad = 0
            for number in range(calls):  # interleaved call by call; the order alternates
                for kind in ("auth", "bare") if number % 2 == 0 else ("bare", "auth"):
                    started = clock()
                    if kind == "auth":
                        status = await contender.call()
                    else:
                        status = await contender.bare_call(authorization)
                    spent[kind].append(clock() - started)
                    bad += status != 200
        return {
            "auth_rps": calls / sum(spent["auth"]),
            "bare_rps": calls / sum(spent["bare"]),
            "ratio": median(spent["bare"]) / median(spent["auth"]),
            "errors": bad,
        }
