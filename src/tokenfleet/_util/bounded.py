"""Bounded per-key tables: memory that an unbounded set of keys cannot exhaust."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_KEYS", "bounded_put"]

MAX_KEYS = 4096  # bound on every per-key table; beyond it, the oldest entries go


def bounded_put(table: dict[str, Any], key: str, value: Any) -> None:
    """``table[key] = value``, dropping the oldest entry when ``MAX_KEYS`` is reached."""
    if len(table) >= MAX_KEYS and key not in table:
        del table[next(iter(table))]
    table[key] = value
