"""Scenario 4: the library's own "current token" call, warm, beside the floor: a
coroutine that returns a value from a dict. Interleaved rounds, medians; ``ratio`` is the
median over rounds of (the library's own call / floor) in the same round."""

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
            # The contender's get_token wraps the library's call in a coroutine of its own
            # (the same for every peer). The library's own call, where a contender names
            # it, is what the floor is compared with: one coroutine against one.
            direct = getattr(contender, "library_get_token", None)
            ours, base, own = [], [], []
            for _ in range(rounds):
                base.append(await per_call_ns(floor, 200_000))
                ours.append(await per_call_ns(contender.get_token, calls))
                if direct is not None:
                    own.append(await per_call_ns(direct(), calls))
    result = {"get_token_ns": median(ours), "floor_ns": median(base), "calls": calls}
    if own:
        result["library_ns"] = median(own)
        result["ratio"] = median([a / b for a, b in zip(own, base, strict=True)])
    return result
