"""One measurement in a fresh process; prints one JSON object. ``run.py`` calls this.

python benchmarks/measure.py SCENARIO '{"name": ..., ...}'
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from scenarios import (
    cold_herd,
    credential_source,
    dpop_cost,
    expiry_herd,
    fleet,
    fleet_scale,
    get_token_cost,
    integration_cpu,
    tokenfleet_only,
    warm_overhead,
)

SCENARIOS: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "cold": cold_herd.run,
    "expiry": expiry_herd.run,
    "warm": warm_overhead.run,
    "get_token": get_token_cost.run,
    "fleet": fleet.run,
    "redis": tokenfleet_only.redis_store,
    "memory_rss": functools.partial(tokenfleet_only.memory, method="rss"),
    "memory_traced": functools.partial(tokenfleet_only.memory, method="tracemalloc"),
    "jwt": tokenfleet_only.jwt_costs,
    "dpop": dpop_cost.run,
    "credentials": credential_source.run,
    "fleet_scale": fleet_scale.run,
    "integration": integration_cpu.run,
}


def main() -> None:
    scenario, *args = sys.argv[1:]
    if scenario == "fleet_worker":
        result = asyncio.run(fleet.worker(*args))
    elif scenario == "fleet_scale_worker":
        asyncio.run(fleet_scale.worker(*args))  # answers on stdout as it goes
        return
    else:
        result = asyncio.run(SCENARIOS[scenario](**json.loads(args[0])))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
