"""Scenario 4: the library's own "current token" call, warm, beside the floor: a
coroutine that returns a value from a dict. Interleaved rounds, medians; ``ratio`` is the
median over rounds of (call / floor) in the same round."""

from __future__ import annotations

import time
from typing import Any

from _support import dev_server, median, per_call_ns
from contenders import Setup, load

ROUND_SECONDS = 0.2


async def run(name: str, latency: float, rounds: int = 7) -> dict[str, Any]:
    kind = load(name)
    if kind.no_get_token:
        return {"na": kind.no_get_token}
    table = {"token": "value"}

    async def floor() -> object:
        return table["token"]

    with dev_server(latency=latency) as server:
        async with kind(Setup.of(server)) as contender:
            await contender.prepare()
            await contender.get_token()
            started = time.perf_counter()
            for _ in range(1000):  # calibrate: each round takes about ROUND_SECONDS
                await contender.get_token()
            each = (time.perf_counter() - started) / 1000
            calls = max(1000, min(200_000, int(ROUND_SECONDS / each)))
            ours, base = [], []
            for _ in range(rounds):
                base.append(await per_call_ns(floor, 200_000))
                ours.append(await per_call_ns(contender.get_token, calls))
    ratios = [a / b for a, b in zip(ours, base, strict=True)]
    return {
        "get_token_ns": median(ours),
        "floor_ns": median(base),
        "ratio": median(ratios),
        "calls": calls,
    }
