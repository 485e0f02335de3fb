"""Durations and latencies in words, for messages and the CLI's output."""

from __future__ import annotations

import sys

__all__ = ["ago_or_in", "can_encode", "duration_words", "latency"]


def can_encode(text: str) -> bool:
    """Whether stdout can show ``text`` (✓, µ) or needs ASCII stand-ins."""
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


_UNITS = ((86400.0, "day"), (3600.0, "hour"), (60.0, "minute"), (1.0, "second"))


def duration_words(seconds: float) -> str:
    """``3 hours``, ``59 minutes``, ``1 second``: the largest unit that fits 1.5 times.

    Counts are rounded down, so a token that expires in 3599 s "expires in 59 minutes".
    """
    seconds = abs(seconds)
    for size, name in _UNITS:
        if seconds >= 1.5 * size or size == 1.0:
            count = int(seconds // size)
            return f"{count} {name}" + ("" if count == 1 else "s")
    raise AssertionError("unreachable")  # pragma: no cover


def ago_or_in(seconds_from_now: float, *, future: str = "in", past: str = "") -> str:
    """``in 59 minutes`` or ``3 hours ago`` (``future`` / ``past`` prefix the words)."""
    words = duration_words(seconds_from_now)
    if seconds_from_now >= 0:
        return f"{future} {words}".strip()
    return f"{past} {words} ago".strip()


def latency(seconds: float) -> str:
    """A latency with a unit that keeps three significant digits: ``420 ns``, ``3.1 ms``."""
    micro = "µs" if can_encode("µ") else "us"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, micro)):
        if seconds >= scale:
            return _three_digits(seconds / scale, unit)
    return _three_digits(seconds / 1e-9, "ns")


def _three_digits(value: float, unit: str) -> str:
    if value >= 100:
        return f"{value:.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"
