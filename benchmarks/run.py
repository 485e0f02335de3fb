"""Run the tokenfleet benchmarks and print one markdown table.

    python benchmarks/run.py [--repeat N] [--quick]

Every measurement runs in a fresh process (``scenarios.py``); the dev authorization
server runs in yet another process, so its CPU does not count against the client.
Repeats are interleaved. The table shows medians with min-max over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from _support import median

HERE = Path(__file__).parent


def measure(name: str, *args: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    out = subprocess.run(
        [sys.executable, str(HERE / "scenarios.py"), name, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--quick", action="store_true", help="smaller herds, one repeat")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    sizes = (100, 1000) if args.quick else (100, 1000, 10_000)

    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeat):  # interleave the scenarios across repeats
        runs.setdefault("warm", []).append(measure("warm"))
        for size in sizes:
            runs.setdefault(f"herd{size}", []).append(measure("herd", size))
        runs.setdefault("refresh", []).append(measure("refresh"))
        runs.setdefault("redis", []).append(measure("redis"))
        runs.setdefault("fleet", []).append(measure("fleet"))

    rows = []
    warm = runs["warm"]
    base = [r["baseline_ns"] for r in warm]
    ours = [r["get_token_ns"] for r in warm]
    ratios = [o / b for o, b in zip(ours, base, strict=True)]
    rows.append(("warm: coroutine returning a dict value (floor)", spread(base) + " ns", "", ""))
    rows.append(
        (
            "warm: `get_token()`, MemoryStore",
            spread(ours) + " ns",
            "≤ 3× floor",
            f"{median(ratios):.2f}× {verdict(median(ratios) <= 3)}",
        )
    )
    for size in sizes:
        herd = runs[f"herd{size}"]
        requests = [r["requests"] for r in herd]
        errors = sum(r["errors"] for r in herd)
        wall = [r["wall_ms"] for r in herd]
        rows.append(
            (
                f"cold herd: {size:,} coroutines → token requests",
                f"{spread(requests)} (errors {errors}, wall {spread(wall)} ms)",
                "1",
                verdict(max(requests) == 1 and errors == 0),
            )
        )
    refresh = runs["refresh"]
    slowest = [r["slowest_ms"] for r in refresh]
    latency = refresh[0]["server_latency_ms"]
    rows.append(
        (
            f"refresh: slowest get_token, 1,000 callers × {refresh[0]['lifetimes']:.0f} "
            f"lifetimes (server latency {latency:.0f} ms)",
            spread(slowest, "{:.2f}") + " ms",
            f"≪ {latency:.0f} ms",
            verdict(max(slowest) < latency / 2),
        )
    )
    rows.append(
        (
            "refresh: token requests / expired tokens handed out",
            f"{spread([r['requests'] for r in refresh])} / {sum(r['expired'] for r in refresh)}",
            "1 per cycle / 0",
            verdict(sum(r["expired"] for r in refresh) == 0),
        )
    )

    redis = runs["redis"]
    near = [r["near_ns"] / r["memory_ns"] for r in redis]
    direct = [r["direct_ns"] / r["bare_get_ns"] for r in redis]
    rows.append(
        (
            "RedisStore `get_token()`, near cache",
            spread([r["near_ns"] for r in redis]) + " ns",
            "≤ 3× MemoryStore",
            f"{median(near):.2f}× {verdict(median(near) <= 3)}",
        )
    )
    rows.append(
        (
            "RedisStore `get_token()`, no near cache",
            spread([r["direct_ns"] / 1000 for r in redis], "{:.1f}") + " µs",
            "≤ 1.5× bare GET",
            f"{median(direct):.2f}× {verdict(median(direct) <= 1.5)}",
        )
    )
    rows.append(
        (
            "bare redis-py `GET` of the same key",
            spread([r["bare_get_ns"] / 1000 for r in redis], "{:.1f}") + " µs",
            "",
            "",
        )
    )
    fleet = runs["fleet"]
    shape = f"{fleet[0]['processes']} processes × {fleet[0]['coroutines']} coroutines"
    for store in ("file", "redis"):
        requests = [r[f"{store}_requests"] for r in fleet]
        errors = sum(r[f"{store}_errors"] for r in fleet)
        rows.append(
            (
                f"fleet, cold, {store.capitalize()}Store: {shape} → token requests",
                f"{spread(requests)} (errors {errors})",
                "1",
                verdict(max(requests) == 1 and errors == 0),
            )
        )

    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("aiohttp", "msgspec", "redis"))
    print(
        f"tokenfleet {metadata.version('tokenfleet')} · Python {platform.python_version()} · "
        f"{os.cpu_count()} cores · {versions} · {repeat} repeat(s), median (min–max)\n"
    )
    print("| scenario | tokenfleet | target | result |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
