"""Run the benchmarks: tokenfleet beside its peers, one table.

    python benchmarks/run.py [--quick] [--repeat N] [--latency S] [--only SCENARIO ...]

Needs the ``bench`` extra (``pip install -e '.[bench]'``; ``tox -e bench`` does it) and
``redis-server`` on the PATH; installs nothing itself. Every measurement runs in a fresh
process (``measure.py``), the dev authorization server in yet another one; every
scenario for every contender runs once per repeat, interleaved. The table shows medians
with min–max over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _support import BOUND, LATENCY
from contenders import NAMES, TOKENFLEET, load
from report import render

HERE = Path(__file__).resolve().parent
SCENARIOS = (
    "cold",
    "expiry",
    "warm",
    "get_token",
    "fleet",
    "redis",
    "memory",
    "jwt",
    "dpop",
    "credentials",
)
SCENARIOS += ("fleet_scale", "integration")
FLEET_LATENCY = 0.1  # the fleet-scale scenario's token endpoint (issue 12's setting)
CONTROL_NAMES = ("control_aiohttp", "control_httpx")
# httpx 0.28 alone fails the 1,000 herd (every request: PoolTimeout or ConnectTimeout, see
# the control row), and at 10,000 only waits out its timeouts for minutes per run. Authlib
# is still run: its lock lets one request at a time into the pool, and it gets through.
HTTPX_NAMES = ("tokenfleet_httpx", "httpxauth", "control_httpx")
SKIPPED_HTTPX = "not run: httpx alone fails at 1,000 already (control row)"
ONCE = ("memory_rss", "memory_traced")  # deterministic enough to measure once per run


def measure(scenario: str, params: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh process; a failure becomes ``{"error": ...}``."""
    path = os.pathsep.join(filter(None, (str(HERE), os.environ.get("PYTHONPATH"))))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore"}  # a checkout's src
    command = [sys.executable, str(HERE / "measure.py"), scenario, json.dumps(params)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=BOUND, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {BOUND:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last[:160]}
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def plan(args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    """(cell key, scenario, params) for one repeat, in the order they run."""
    latency = {"latency": args.latency}
    sizes = (100, 1000) if args.quick else (100, 1000, 10_000)
    calls = 1000 if args.quick else 5000
    steps: list[tuple[str, str, dict[str, Any]]] = []
    for size in sizes:
        for name in NAMES + CONTROL_NAMES:
            params = {"name": name, "size": size, **latency}
            if size > 1000 and name in HTTPX_NAMES:
                params = {"na": SKIPPED_HTTPX}
            steps.append((f"cold{size}/{name}", "cold", params))
    steps += [(f"expiry/{n}", "expiry", {"name": n, **latency}) for n in NAMES]
    steps += [(f"warm/{n}", "warm", {"name": n, "calls": calls, **latency}) for n in NAMES]
    steps += [(f"get_token/{n}", "get_token", {"name": n, **latency}) for n in NAMES]
    for name in NAMES:
        if name == "tokenfleet_httpx":
            continue  # the same TokenManager and stores as tokenfleet + aiohttp
        for sharing in ("none", *load(name).sharing):
            params = {"name": name, "sharing": sharing, **latency}
            steps.append((f"fleet-{sharing}/{name}", "fleet", params))
    steps += [
        (s, s, dict(latency))
        for s in ("redis", "memory_rss", "memory_traced", "jwt", "dpop", "credentials")
    ]
    steps.append(("integration", "integration", dict(latency)))
    # --quick shrinks the fleet too, unless its size is given
    members = args.members or (200 if args.quick else 1000)
    processes = args.processes or (4 if args.quick else 8)
    for store in ("redis", "file"):
        params = {"store": store, "members": members, "processes": processes}
        steps.append((f"fleet_scale-{store}", "fleet_scale", {**params, "latency": FLEET_LATENCY}))
    return [
        step for step in steps if step[1].removesuffix("_rss").removesuffix("_traced") in args.only
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (3)")
    parser.add_argument("--quick", action="store_true", help="smaller herds, one repeat")
    parser.add_argument("--latency", type=float, default=LATENCY, help="token endpoint delay, s")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=SCENARIOS)
    parser.add_argument("--members", type=int, help="fleet_scale members (1000; 200 with --quick)")
    parser.add_argument("--processes", type=int, help="fleet_scale processes (8; 4 with --quick)")
    parser.add_argument("--save", type=Path, help="also write the raw results here (JSON)")
    parser.add_argument("--load", type=Path, help="render saved raw results, run nothing")
    args = parser.parse_args()
    if args.load:
        saved = json.loads(args.load.read_text())
        print(render(saved["runs"], saved["context"]))
        return
    repeat = 1 if args.quick else max(1, min(args.repeat, 10))
    steps = plan(args)
    started, load_before = time.time(), os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {}
    for number in range(repeat):  # every scenario for every contender, then again
        for index, (key, scenario, params) in enumerate(steps, 1):
            print(f"[{number + 1}/{repeat}] {index}/{len(steps)} {key}", file=sys.stderr)
            if "na" in params:
                runs.setdefault(key, [params])
                continue
            if number > 0 and scenario in ONCE:
                continue
            runs.setdefault(key, []).append(measure(scenario, params))
    context = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        "repeat": repeat,
        "latency": args.latency,
        "minutes": (time.time() - started) / 60,
        "load": (load_before, os.getloadavg()),
        "quick": args.quick,
        "tokenfleet": TOKENFLEET,
    }
    if args.save:
        args.save.write_text(json.dumps({"runs": runs, "context": context}))
    print(render(runs, context))


if __name__ == "__main__":
    main()
