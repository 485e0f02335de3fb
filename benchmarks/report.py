"""Turn the raw measurements of ``run.py`` into the markdown tables."""

from __future__ import annotations

import math
import os
import platform
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from _support import median
from contenders import CONTROLS, LABELS, NAMES, TOKENFLEET, load
from report_fleet import fleet_scale_rows
from report_perf import get_token_ratio_row, integration_rows, memory_verdict

Runs = dict[str, list[dict[str, Any]]]
PEERS = ("authlib_httpx", "httpxauth", "aiohttp_oauth2", "handwritten")
PACKAGES = ("tokenfleet", "aiohttp", "httpx", "Authlib", "httpx-auth", "aiohttp-oauth2-client")
PACKAGES += ("redis", "msgspec", "PyJWT")

# The refresh policy of a default TokenManager, for the expected count of scenario 2.
REFRESH_RATIO, JITTER = 0.8, 0.05


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    low, mid, high = min(values), median(values), max(values)
    return f"{fmt.format(mid)} ({fmt.format(low)}–{fmt.format(high)})"


def verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _problem(results: list[dict[str, Any]]) -> str | None:
    for result in results:
        if "na" in result:
            return f"n/a: {result['na']}"
        if "error" in result:
            return f"failed: {result['error']}"
    return None


def cell(runs: Runs, key: str, column: str, fmt: str = "{:.0f}", scale: float = 1.0) -> str:
    results = runs.get(key)
    if not results:
        return "–"
    problem = _problem(results)
    if problem is not None:
        return problem
    return spread([r[column] * scale for r in results], fmt)


def values(runs: Runs, key: str, column: str) -> list[float] | None:
    results = runs.get(key)
    if not results or _problem(results) is not None:
        return None
    return [float(r[column]) for r in results]


def expected_refreshes(seconds: float = 10.0, lifetime: float = 2.0) -> tuple[int, int]:
    """Token requests a default TokenManager makes in ``seconds`` of 2 s tokens: the
    first token, then one per refresh cycle of (0.80 − jitter up to 0.05) × lifetime."""
    shortest, longest = lifetime * (REFRESH_RATIO - JITTER), lifetime * REFRESH_RATIO
    return 1 + math.floor(seconds / longest), 1 + math.floor(seconds / shortest)


def _row(
    runs: Runs,
    label: str,
    key: str,
    column: str,
    target: str = "",
    check: Callable[[list[float]], bool] | None = None,
    fmt: str = "{:.0f}",
    scale: float = 1.0,
) -> list[str]:
    cells = [cell(runs, f"{key}/{name}", column, fmt, scale) for name in NAMES]
    result = ""
    if check is not None:
        found = {n: values(runs, f"{key}/{n}", column) for n in TOKENFLEET}
        verdicts = {n: verdict(check(v)) for n, v in found.items() if v is not None}
        if len(set(verdicts.values())) == 1:
            result = next(iter(verdicts.values()))
        else:
            result = " · ".join(f"{LABELS[n].split()[-1]} {v}" for n, v in verdicts.items())
    return [label, *cells, target, result]


def comparison(runs: Runs, context: dict[str, Any]) -> list[list[str]]:
    latency_ms = context["latency"] * 1000
    rows: list[list[str]] = []
    for size in (100, 1000, 10_000):
        key = f"cold{size}"
        if not any(k.startswith(key + "/") for k in runs):
            continue
        title = f"1 · cold herd, {size:,} coroutines"
        rows.append(
            _row(
                runs, f"{title}: token requests", key, "token_requests", "1", lambda v: max(v) == 1
            )
        )
        rows.append(_row(runs, f"{title}: errors", key, "errors", "0", lambda v: max(v) == 0))
        rows.append(_row(runs, f"{title}: wall time, ms", key, "wall_ms"))
    if any(k.startswith("expiry/") for k in runs):
        low, high = expected_refreshes()
        expect = f"{low}" if low == high else f"{low}–{high}"
        rows.append(
            _row(
                runs,
                "2 · expiry herd (2 s tokens, 10 s): token requests",
                "expiry",
                "token_requests",
                f"{expect} (1 + one per refresh cycle)",
                lambda v: all(low <= x <= high for x in v),
            )
        )
        rows.append(
            _row(
                runs,
                "2 · expiry herd: calls whose final status was 401",
                "expiry",
                "unauthorized",
                "0",
                lambda v: max(v) == 0,
            )
        )
        rows.append(
            _row(
                runs,
                "2 · expiry herd: retries after a 401 (library-internal)",
                "expiry",
                "retries",
                "0",
                lambda v: max(v) == 0,
            )
        )
        rows.append(
            _row(
                runs,
                "2 · expiry herd: slowest wait for a token, ms",
                "expiry",
                "slowest_wait_ms",
                f"≪ {latency_ms:.0f} ms (< {latency_ms / 2:.0f})",
                lambda v: max(v) < latency_ms / 2,
                "{:.1f}",
            )
        )
        rows.append(
            _row(runs, "2 · expiry herd: slowest whole call, ms", "expiry", "slowest_call_ms")
        )
        rows.append(_row(runs, "2 · expiry herd: calls completed", "expiry", "calls"))
        rows.append(
            _row(
                runs,
                "2 · expiry herd: calls that raised",
                "expiry",
                "errors",
                "0",
                lambda v: max(v) == 0,
            )
        )
    if any(k.startswith("warm/") for k in runs):
        rows.append(_row(runs, "3 · warm, sequential: authenticated req/s", "warm", "auth_rps"))
        rows.append(
            _row(
                runs,
                "3 · warm: same client, fixed header, no auth library, req/s",
                "warm",
                "bare_rps",
            )
        )
        rows.append(
            _row(
                runs,
                "3 · warm: ratio authenticated / unauthenticated",
                "warm",
                "ratio",
                "≥ 0.98",
                lambda v: median(v) >= 0.98,
                "{:.3f}",
            )
        )
    if any(k.startswith("get_token/") for k in runs):
        rows += _get_token_rows(runs)
    rows += _fleet_rows(runs)
    return rows


def _get_token_rows(runs: Runs) -> list[list[str]]:
    ours = values(runs, "get_token/tokenfleet_aiohttp", "get_token_ns")
    peers = {n: values(runs, f"get_token/{n}", "get_token_ns") for n in PEERS}
    measured = {n: median(v) for n, v in peers.items() if v}
    result = ""
    if ours and measured:
        best = min(measured, key=measured.__getitem__)
        factor = measured[best] / median(ours)
        result = f"{factor:.1f}× cheaper than the best peer ({LABELS[best]})"
        libraries = {n: t for n, t in measured.items() if n != "handwritten"}
        if best == "handwritten" and libraries:
            library = min(libraries, key=libraries.__getitem__)
            result += f"; {libraries[library] / median(ours):.1f}× vs {LABELS[library]}"
    rows = [
        _row(
            runs,
            "4 · warm get-token call, ns",
            "get_token",
            "get_token_ns",
            "the ratio row below (≤ 1.5× the floor)",
        )
    ]
    rows[0][-1] = result
    rows.append(
        _row(runs, "4 · floor: a coroutine returning a dict value, ns", "get_token", "floor_ns")
    )
    return rows


def _fleet_rows(runs: Runs) -> list[list[str]]:
    rows = []
    for sharing, label in (
        ("none", "no sharing (per-process cache)"),
        ("file", "shared file (tokenfleet FileStore)"),
        ("jsonfile", "shared file (httpx-auth JsonTokenFileCache)"),
        ("redis", "shared Redis (tokenfleet RedisStore)"),
    ):
        key = f"fleet-{sharing}"
        if not any(k.startswith(key + "/") for k in runs):
            continue
        cells = []
        for name in NAMES:
            results = runs.get(f"{key}/{name}")
            if results is None:
                cells.append("n/a" if sharing != "none" else "same as tokenfleet + aiohttp")
                continue
            text = cell(runs, f"{key}/{name}", "token_requests")
            errors = values(runs, f"{key}/{name}", "errors")
            cells.append(text + (f" (errors {sum(errors):.0f})" if errors else ""))
        target, result = "", ""
        if sharing in ("file", "redis"):
            found = values(runs, f"{key}/tokenfleet_aiohttp", "token_requests")
            errors = values(runs, f"{key}/tokenfleet_aiohttp", "errors")
            target = "1"
            result = verdict(bool(found) and max(found or [0]) == 1 and not any(errors or []))
        rows.append([f"5 · fleet 4 × 250, cold, {label}: token requests", *cells, target, result])
    return rows


def tokenfleet_alone(runs: Runs) -> list[list[str]]:
    rows: list[list[str]] = []
    redis = runs.get("redis")
    if redis and _problem(redis) is None:
        near = median([r["near_ns"] / r["memory_ns"] for r in redis])
        direct = median([r["direct_ns"] / r["bare_get_ns"] for r in redis])
        rows += [
            [
                "RedisStore `get_token()`, near cache",
                cell(runs, "redis", "near_ns") + " ns",
                "≤ 3× MemoryStore",
                f"{near:.2f}× {verdict(near <= 3)}",
            ],
            [
                "MemoryStore `get_token()` (same run)",
                cell(runs, "redis", "memory_ns") + " ns",
                "",
                "",
            ],
            [
                "RedisStore `get_token()`, no near cache",
                cell(runs, "redis", "direct_ns", "{:.1f}", 1e-3) + " µs",
                "≤ 1.5× bare GET",
                f"{direct:.2f}× {verdict(direct <= 1.5)}",
            ],
            [
                "bare redis-py `GET` of the same key",
                cell(runs, "redis", "bare_get_ns", "{:.1f}", 1e-3) + " µs",
                "",
                "",
            ],
        ]
    for key, how in (
        ("memory_traced", "tracemalloc: Python allocations still alive"),
        ("memory_rss", "RSS growth of the process, tracemalloc off"),
    ):
        found = runs.get(key)
        if found and _problem(found) is None:
            count, chars = found[0]["tokens"], found[0]["token_chars"]
            per_token = cell(runs, key, "bytes", "{:.0f}", 1 / count)
            target, result = memory_verdict(found[0]) if key == "memory_traced" else ("", "")
            rows.append(
                [
                    f"memory of {count:,} cached tokens ({chars}-character JWTs), {how}",
                    cell(runs, key, "bytes", "{:.1f}", 1 / 2**20) + f" MiB ({per_token} B/token)",
                    target,
                    result,
                ]
            )
    jwt_runs = runs.get("jwt")
    if jwt_runs and _problem(jwt_runs) is None:
        for column, label in (
            ("read_us", "JWT: read claims, first access (`token.claims`, unverified)"),
            ("read_cached_us", "JWT: read claims, cached (`token.claims` again)"),
            ("read_pyjwt_us", "pyjwt `jwt.decode(verify_signature=False)`"),
            ("verify_us", "JWT: `JWTVerifier.verify()`, JWKS cached (RS256, iss/aud/exp/nbf)"),
            ("bare_decode_us", "pyjwt `jwt.decode()` with the key in hand (RS256, iss/aud)"),
        ):
            rows.append([label, cell(runs, "jwt", column, "{:.1f}") + " µs", "", ""])
    ratio = get_token_ratio_row(runs)
    rows += [ratio] if ratio else []
    rows += integration_rows(runs)
    rows += _dpop_rows(runs)
    rows += _credential_rows(runs)
    rows += fleet_scale_rows(runs)
    for key in (
        "redis",
        "memory_traced",
        "memory_rss",
        "jwt",
        "dpop",
        "credentials",
        "integration",
    ):
        problem = _problem(runs.get(key) or [{}])
        if runs.get(key) and problem:
            rows.append([key, problem, "", ""])
    return rows


_ALG = {"es256": "ES256", "eddsa": "EdDSA"}
_CREDENTIALS = (
    ("secret_value_us", "client secret as a value"),
    ("secret_file_us", "`SecretFile`, unchanged (one stat)"),
    ("secret_file_changed_us", "`SecretFile`, changed (stat + read)"),
    ("key_value_us", "private key as a value (ES256 assertion)"),
    ("key_file_us", "`KeyFile`, unchanged (ES256 assertion)"),
    ("assertion_file_us", "`AssertionFile`, unchanged"),
)


def _credential_rows(runs: Runs) -> list[list[str]]:
    """Scenario 8: the credential's cost in one token request, per source."""
    found = runs.get("credentials")
    if not found or _problem(found) is not None:
        return []
    plain = median([r["secret_value_us"] for r in found])
    rows = []
    for column, label in _CREDENTIALS:
        extra = median([r[column] for r in found]) - plain
        note = f"+{extra:.1f} µs vs a value" if column.startswith("secret_file") else ""
        rows.append(
            [
                f"credential per token request: {label}",
                cell(runs, "credentials", column, "{:.1f}") + " µs",
                "≪ a token request's round trip" if column == "secret_file_changed_us" else "",
                note,
            ]
        )
    return rows


def _dpop_rows(runs: Runs) -> list[list[str]]:
    """Scenario 7: DPoP proof cost beside the Bearer path (target: proofs do not dominate)."""
    found = runs.get("dpop")
    if not found or _problem(found) is not None:
        return []
    rows = []
    for alg in ("es256", "eddsa"):
        label = f"DPoP: sign one proof, {_ALG[alg]}"
        us = cell(runs, "dpop", f"proof_{alg}_us", "{:.1f}")
        per_s = cell(runs, "dpop", f"proofs_per_s_{alg}", "{:,.0f}")
        rows.append([label, f"{us} µs ({per_s} proofs/s per core)", "", ""])
    bearer = median([r["bearer_auth_us"] for r in found])
    rows.append(
        [
            "Bearer: token + header per request (`BearerAuth`)",
            cell(runs, "dpop", "bearer_auth_us", "{:.2f}") + " µs",
            "",
            "",
        ]
    )
    for alg in ("es256", "eddsa"):
        auth = median([r[f"dpop_auth_{alg}_us"] for r in found])
        rows.append(
            [
                f"DPoP: token + header + proof per request, {_ALG[alg]}",
                cell(runs, "dpop", f"dpop_auth_{alg}_us", "{:.1f}") + " µs",
                "≤ 1 ms (≪ a network round trip)",
                f"{auth / bearer:.0f}× Bearer {verdict(auth <= 1000)}",
            ]
        )
    rows.append(
        [
            "DPoP: `DPoPVerifier.verify()` of an ES256 proof (resource server)",
            cell(runs, "dpop", "verify_es256_us", "{:.1f}") + " µs",
            "",
            "",
        ]
    )
    return rows


def controls(runs: Runs) -> list[list[str]]:
    rows = []
    for size in (100, 1000, 10_000):
        key = f"cold{size}"
        if not any(k.startswith(f"{key}/control_") for k in runs):
            continue
        row = [f"1 · cold herd, {size:,} coroutines, fixed header, no auth library"]
        for name in CONTROLS:
            problem = _problem(runs.get(f"{key}/{name}") or [{"na": "not run"}])
            if problem is not None:
                row.append(problem)
                continue
            errors = cell(runs, f"{key}/{name}", "errors")
            wall = cell(runs, f"{key}/{name}", "wall_ms")
            row.append(f"errors {errors} · wall {wall} ms")
        rows.append(row)
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def render(runs: Runs, context: dict[str, Any]) -> str:
    before, after = context["load"]
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    with warnings.catch_warnings():  # importing a peer may warn (Authlib about httpx2)
        warnings.simplefilter("ignore")
        notes = {n: load(n).no_margin for n in NAMES if n not in TOKENFLEET}
    margins = "; ".join(f"{LABELS[n]}: {note}" for n, note in notes.items() if note)
    head = [
        f"Date: {context.get('date') or f'{datetime.now(UTC):%Y-%m-%d %H:%M} UTC'} · "
        f"{os.cpu_count()} cores · Python {platform.python_version()} · "
        f"load average {before[0]:.2f} before, {after[0]:.2f} after · "
        f"{context['minutes']:.1f} minutes",
        f"Versions: {versions}",
        f"Command: `{context['command']}` · {context['repeat']} repeat(s), each in a fresh "
        f"process · token endpoint latency {context['latency'] * 1000:.0f} ms · cells: "
        "median (min–max) · target and result: tokenfleet's (both integrations where shown)",
        "Expiry herd: tokenfleet keeps its defaults (refresh ahead at 80 % of the lifetime); "
        f"the others get a margin of 20 % of the lifetime where they let you set one; {margins}",
    ]
    header = ["scenario", *(LABELS[n] for n in NAMES), "tokenfleet target", "result"]
    parts = ["\n\n".join(head), _table(header, comparison(runs, context))]
    control = controls(runs)
    if control:
        header = [
            "control: the HTTP client alone",
            *(f"{c.split('_')[1]} alone" for c in CONTROLS),
        ]
        parts.append(_table(header, control))
    alone = tokenfleet_alone(runs)
    if alone:
        parts.append(_table(["tokenfleet alone", "measured", "target", "result"], alone))
    return "\n\n".join(parts) + "\n"
