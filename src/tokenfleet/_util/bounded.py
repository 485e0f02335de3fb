"""Bounded per-key tables: memory that an unbounded set of keys cannot exhaust."""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

__all__ = ["MAX_KEYS", "BoundedDict", "make_room"]

MAX_KEYS = 4096  # bound on every per-key table; beyond it, the oldest entries go

K = TypeVar("K")
V = TypeVar("V")


def make_room(table: dict[Any, Any], limit: int, key: object) -> None:
    """Before ``table[key] = ...``: at ``limit`` entries, drop the oldest (the first).

    For the hot tables that must stay plain dicts: a ``dict`` subclass costs about 25 ns
    more per ``get`` (the near cache's lookup on every ``get_token`` call).
    """
    if len(table) >= limit and key not in table:
        # Another thread may drop the same oldest entry first (module-level tables).
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):
            del table[next(iter(table))]


class BoundedDict(dict[K, V]):
    """A dict of at most ``limit`` entries: a new key beyond it drops the oldest one.

    Dicts keep insertion order, so the oldest is the first. Reads are plain dict reads
    (nothing added on hot paths); write with ``table[key] = value`` (``update`` and
    ``setdefault`` bypass the bound and are not used on these tables).
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int = MAX_KEYS) -> None:
        if limit < 1:
            raise ValueError("a BoundedDict needs a limit >= 1")
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        make_room(self, self.limit, key)
        super().__setitem__(key, value)
