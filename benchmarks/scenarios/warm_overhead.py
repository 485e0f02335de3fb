"""Scenario 3: sequential authenticated requests with a warm token, beside the same
requests through the same kind of client, same settings, with a fixed ``Authorization``
header and no auth library (so the server does the same work for both).

The ratio is the median over many short interleaved rounds of (bare time / authenticated
time) in that round: the dev server shares the machine, so a total over a few long rounds
swings by ±10 % from run to run (issue 17), far more than the auth layer costs."""

from __future__ import annotations

import time
from typing import Any

from _support import dev_server, median
from contenders import Setup, fixed_authorization, load


async def run(name: str, latency: float, calls: int = 5000, rounds: int = 25) -> dict[str, Any]:
    with dev_server(latency=latency) as server:
        setup = Setup.of(server)
        authorization = await fixed_authorization(setup)  # setup, not timed
        async with load(name)(setup) as contender:
            await contender.prepare()
            await contender.call()
            await contender.bare_call(authorization)
            per_round = calls // rounds
            elapsed = {"auth": 0.0, "bare": 0.0}
            ratios = []
            bad = 0
            for number in range(rounds):  # interleaved; the order alternates per round
                order = ("auth", "bare") if number % 2 == 0 else ("bare", "auth")
                spent = {}
                for kind in order:
                    started = time.perf_counter()
                    for _ in range(per_round):
                        if kind == "auth":
                            status = await contender.call()
                        else:
                            status = await contender.bare_call(authorization)
                        bad += status != 200
                    spent[kind] = time.perf_counter() - started
                    elapsed[kind] += spent[kind]
                ratios.append(spent["bare"] / spent["auth"])
        done = per_round * rounds
        return {
            "auth_rps": done / elapsed["auth"],
            "bare_rps": done / elapsed["bare"],
            "ratio": median(ratios),
            "errors": bad,
        }
