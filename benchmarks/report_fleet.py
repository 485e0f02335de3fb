"""The fleet-scale rows of the "tokenfleet alone" table (scenario fleet_scale)."""

from __future__ import annotations

from typing import Any

from _support import median

Runs = dict[str, list[dict[str, Any]]]
STORES = (("redis", "RedisStore"), ("file", "FileStore"))
# Of one core, for 1,000 idle warm members: half of the quarter core measured before
# (redis-py pub/sub reads that woke every 0.2 s per member).
IDLE_TARGET = 0.125


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _med(found: list[dict[str, Any]], column: str) -> float:
    return median([float(r[column]) for r in found])


def _latency(found: list[dict[str, Any]], phase: str) -> str:
    parts = (_med(found, f"{phase}_{q}_ms") for q in ("p50", "p99", "max"))
    return " / ".join(f"{v:.0f}" for v in parts) + " ms"


def _commands(found: list[dict[str, Any]], phase: str) -> str:
    value = found[0].get(f"{phase}_commands")
    return "n/a" if value is None else f"{_med(found, f'{phase}_commands'):.1f}"


def _floor(found: list[dict[str, Any]]) -> float:
    """The floor's asked → last served (ms); runs saved before it was recorded give the
    slowest member's latency, which is the same moment seen from that member."""
    column = "floor_last_ms" if "floor_last_ms" in found[0] else "floor_max_ms"
    return _med(found, column)


def fleet_scale_rows(runs: Runs) -> list[list[str]]:
    rows: list[list[str]] = []
    for store, label in STORES:
        found = runs.get(f"fleet_scale-{store}")
        if not found or any("error" in r or "na" in r for r in found):
            if found:
                problem = found[0].get("error") or found[0].get("na")
                rows.append([f"fleet scale, {label}", f"failed: {problem}", "", ""])
            continue
        rows += _rows(found, label, store == "redis")
    return rows


def _rows(found: list[dict[str, Any]], label: str, redis: bool) -> list[list[str]]:
    members, processes = int(found[0]["members"]), int(found[0]["processes"])
    head = f"fleet of {members:,} members ({processes} processes), {label}"
    cold_req, inval_req = _med(found, "cold_requests"), _med(found, "invalidation_requests")
    spread, floor = _med(found, "cold_spread_ms"), _floor(found)
    first_last = _med(found, "floor_spread_ms")
    ratio = spread / floor if floor > 0 else float("inf")
    idle = _med(found, "idle_core") * 1000 / members  # per 1,000 members
    rows = [
        [f"{head}, cold: token requests", f"{cold_req:.0f}", "1", _verdict(cold_req == 1)],
        [
            f"{head}, cold: token landed → last member served (floor: token in the "
            "store, asked → last served)",
            f"{spread:.0f} ms ({ratio:.2f}× the floor's {floor:.0f} ms)",
            "≤ 1.5× floor",
            _verdict(ratio <= 1.5),
        ],
        [
            f"{head}, cold: the same against the floor's first → last served (stricter: "
            "leaves out the floor's sends)",
            f"{spread / first_last if first_last > 0 else float('inf'):.2f}× its "
            f"{first_last:.0f} ms",
            "",
            "",
        ],
        [f"{head}, cold: member latency p50 / p99 / max", _latency(found, "cold"), "", ""],
        [
            f"{head}, one invalidation, all warm: token requests",
            f"{inval_req:.0f}",
            "≤ 2",
            _verdict(inval_req <= 2),
        ],
        [
            f"{head}, invalidation: replacement landed → last member switched "
            "(members ask every 100 ms)",
            f"{_med(found, 'invalidation_spread_ms'):.0f} ms",
            "",
            "",
        ],
        [
            f"{head}, invalidation: call latency p50 / p99 / max",
            _latency(found, "invalidation"),
            "",
            "",
        ],
        [
            f"{head}, floor (token already in the store): asked → last served; first → "
            "last served; latency p50 / p99 / max",
            f"{floor:.0f} ms; {first_last:.0f} ms; {_latency(found, 'floor')}",
            "",
            "",
        ],
        [
            f"{head}, idle warm members: CPU",
            f"{idle * 100:.2f} % of a core per 1,000 members",
            f"< {IDLE_TARGET * 100:.0f} %",
            _verdict(idle < IDLE_TARGET),
        ],
    ]
    if redis:
        cold = _med(found, "cold_commands")
        rows.insert(
            3,
            [
                f"{head}, cold: Redis commands per member",
                f"{cold:.1f}",
                "≤ 10",
                _verdict(cold <= 10),
            ],
        )
        rows.append(
            [
                f"{head}, Redis commands per member: invalidation / floor",
                f"{_commands(found, 'invalidation')} / {_commands(found, 'floor')}",
                "",
                "",
            ]
        )
    return rows
