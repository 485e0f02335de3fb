"""What ``tokenfleet demo`` shows: a progress display while it runs, a table at the end."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from ._histogram import Histogram
from ._output import latency, out

__all__ = ["Progress", "WorkerResult", "point", "table"]

_PLAIN_EVERY = 2.0  # seconds between two progress lines when stdout is not a terminal


class Progress:
    """One updating line on a terminal; a plain line every two seconds otherwise."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.tty = sys.stdout.isatty()
        self._last_plain = float("-inf")

    def show(self, elapsed: float, calls: int, requests: int, *, final: bool = False) -> None:
        """Show the state ``elapsed`` seconds into the run (``final``: always, if plain)."""
        line = (
            f"  {min(elapsed, self.duration):5.1f} s / {self.duration:g} s   "
            f"{calls:>12,} get_token calls   {requests:>3} token requests"
        )
        if self.tty:
            out("\r" + line + "\x1b[K", end="")
        elif final or time.monotonic() - self._last_plain >= _PLAIN_EVERY:
            self._last_plain = time.monotonic()
            out(line)

    def close(self) -> None:
        """End the updating line."""
        if self.tty:
            out()


@dataclass(frozen=True)
class WorkerResult:
    """One process's ``done`` message."""

    calls: int
    errors: int
    hits: int
    fetches: int
    histogram: Histogram

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> WorkerResult:
        """Parse a worker's ``done`` line."""
        return cls(
            calls=int(message["calls"]),
            errors=int(message["errors"]),
            hits=int(message["hits"]),
            fetches=int(message["fetches"]),
            histogram=Histogram.from_json(message["histogram"]),
        )


_HEADER = (
    "process",
    "callers",
    "get_token calls",
    "cache hits",
    "token requests",
    "p50",
    "p99",
    "max",
    "errors",
)


# What the columns mean, printed under the table (the output explains itself).
LEGEND = (
    "cache hits: calls answered from the process's own memory (its near cache); the others "
    "waited for a fetch or read the shared store",
    "token requests: requests this process sent to the authorization server; 0 means it "
    "always found another process's token in the shared store",
)


def _row(name: str, callers: int, result: WorkerResult) -> tuple[str, ...]:
    h = result.histogram
    return (
        name,
        f"{callers:,}",
        f"{result.calls:,}",
        f"{result.hits:,}",
        f"{result.fetches:,}",
        latency(h.percentile(0.50)),
        latency(h.percentile(0.99)),
        latency(h.maximum()),
        f"{result.errors:,}",
    )


def _total(results: list[WorkerResult]) -> WorkerResult:
    histogram = Histogram()
    for result in results:
        histogram.merge(result.histogram)
    return WorkerResult(
        calls=sum(r.calls for r in results),
        errors=sum(r.errors for r in results),
        hits=sum(r.hits for r in results),
        fetches=sum(r.fetches for r in results),
        histogram=histogram,
    )


def table(results: list[WorkerResult], coroutines: int) -> list[str]:
    """The per-process table with a total row, as lines."""
    rows: list[tuple[str, ...]] = [_HEADER]
    rows += [_row(str(i), coroutines, r) for i, r in enumerate(results, 1)]
    rows.append(_row("total", coroutines * len(results), _total(results)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        if n == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(cells).rstrip())
    return lines


def point(
    results: list[WorkerResult], coroutines: int, requests: int, shared: bool, lifetime: float
) -> str:
    """The one sentence that says what the table shows."""
    calls = sum(r.calls for r in results)
    workers = len(results)
    p99 = latency(_total(results).histogram.percentile(0.99))
    head = (
        f"{workers} processes × {coroutines:,} coroutines, {calls:,} get_token calls, "
        f"{requests:,} token requests"
    )
    if shared:
        return (
            f"{head}: about one per token lifetime for the whole fleet ({lifetime:g} s tokens, "
            f"replaced at ~80 % of their life); 99 % of calls took under {p99}."
        )
    return (
        f"{head}: memory:// gives each process its own cache, so each fetched its own "
        f"tokens, {workers}× what a shared store needs (try the default, --store file)."
    )
