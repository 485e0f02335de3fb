"""Rows of the per-request cost scenarios (issue 17): the integrations' CPU per request,
the memory of cached tokens, and warm ``get_token()`` against the floor coroutine."""

from __future__ import annotations

from typing import Any

from _support import median

Runs = dict[str, list[dict[str, Any]]]

ADDED_TARGET_NS = 1000.0  # the auth layer adds at most 1 µs of CPU per request
MEMORY_TARGET = 400.0  # bytes per cached token beyond the token's own characters
GET_TOKEN_TARGET = 1.5  # warm get_token() against a coroutine returning a dict value


def _ok(results: list[dict[str, Any]] | None) -> bool:
    return bool(results) and not any("error" in r or "na" in r for r in results or [])


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _span(found: list[float], fmt: str) -> str:
    if len(found) == 1:
        return fmt.format(found[0])
    return f"{fmt.format(median(found))} ({fmt.format(min(found))}–{fmt.format(max(found))})"


def integration_rows(runs: Runs) -> list[list[str]]:
    """Scenario 9: CPU the auth layer adds per request, beside a no-op layer."""
    found = runs.get("integration")
    if not _ok(found):
        return []
    assert found is not None
    rows = []
    for name, label, noop in (
        ("aiohttp", "`tokenfleet.aiohttp.BearerAuth`", "a no-op middleware"),
        ("httpx", "`tokenfleet.httpx.BearerAuth` (`async_auth_flow`)", "a no-op `httpx.Auth`"),
    ):
        added = [r[f"{name}_added_ns"] for r in found]
        rows.append(
            [
                f"CPU added per request by {label}, beside {noop} (stub handler, warm token)",
                _span(added, "{:.0f}") + " ns",
                "≤ 1 µs",
                _verdict(median(added) <= ADDED_TARGET_NS),
            ]
        )
        fixed = _span([r[f"{name}_fixed_added_ns"] for r in found], "{:.0f}")
        rows.append(["… the floor: a layer that only sets a fixed header adds, ns", fixed, "", ""])
        over = [r[f"{name}_over_fixed_ns"] for r in found if f"{name}_over_fixed_ns" in r]
        if over:  # the proposed target where the floor itself is above 1 µs (httpx)
            rows.append(
                [
                    "… above that floor (layer − fixed-header layer, same rounds), ns",
                    _span(over, "{:.0f}"),
                    "≤ 1 µs (proposed)",
                    _verdict(median(over) <= ADDED_TARGET_NS),
                ]
            )
    rows.append(
        [
            "… warm `get_token()` in the same run (CPU), ns",
            _span([r["get_token_ns"] for r in found], "{:.0f}"),
            "",
            "",
        ]
    )
    return rows


def memory_verdict(result: dict[str, Any]) -> tuple[str, str]:
    """(target, result) cells of a memory row: bytes per token beyond its characters."""
    extra = result["bytes"] / result["tokens"] - result["token_chars"]
    return (
        "< 400 B/token beyond its characters",
        f"{extra:.0f} B {_verdict(extra < MEMORY_TARGET)}",
    )


def get_token_ratio_row(runs: Runs) -> list[str] | None:
    """Scenario 4: warm get_token() / the floor coroutine, median of interleaved rounds."""
    found = runs.get("get_token/tokenfleet_aiohttp")
    if not _ok(found) or found is None or "ratio" not in found[0]:
        return None
    ratios = [r["ratio"] for r in found]
    return [
        "4 · warm `TokenManager.get_token()` / floor coroutine (median of interleaved rounds)",
        _span(ratios, "{:.2f}") + "×",
        f"≤ {GET_TOKEN_TARGET}×",
        _verdict(median(ratios) <= GET_TOKEN_TARGET),
    ]
