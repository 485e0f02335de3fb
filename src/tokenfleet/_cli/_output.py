"""Writing to the terminal: plain lines, check marks, durations in words, latencies.

Everything goes through ``out`` and ``err`` so that the commands stay free of ``print``.
"""

from __future__ import annotations

import sys
from typing import TextIO

from .._util.words import ago_or_in, can_encode, duration_words, latency

__all__ = ["ago_or_in", "duration_words", "err", "latency", "mark", "out"]


def out(text: str = "", *, end: str = "\n", stream: TextIO | None = None) -> None:
    """Write one line to stdout (or ``stream``) and flush, so pipes see it at once."""
    target = stream if stream is not None else sys.stdout
    target.write(text + end)
    target.flush()


def err(text: str) -> None:
    """Write one line to stderr."""
    out(text, stream=sys.stderr)


def mark(ok: bool | None) -> str:
    """``✓``, ``✗`` or ``–`` (skipped); ASCII stand-ins on terminals that cannot show them."""
    fancy = {True: "✓", False: "✗", None: "–"}[ok]
    if can_encode(fancy):
        return fancy
    return {True: "ok", False: "FAIL", None: "skip"}[ok]
