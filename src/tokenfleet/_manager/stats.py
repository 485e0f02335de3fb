"""Counters a ``TokenManager`` keeps, cheap enough for the hot path (plain int attributes)."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Stats"]

_COUNTERS = (
    "fetch_errors",
    "fetches",
    "hits",
    "lock_timeouts",
    "misses",
    "refreshes_ahead",
    "stale_served",
    "store_errors",
    "store_hits",
    "waits",
)


def _none() -> int:
    return 0


class Stats:
    """What a ``TokenManager`` has done since it was created.

    Attributes:
        hits: tokens served from the near cache (both branches of ``get_token``).
        checked_hits: the part of ``hits`` served by the branch that reads the clock.
        misses: calls that found no usable token in the near cache.
        store_hits: tokens found in the store (written by another process, or by this
            one before a restart) instead of fetched: a miss that cost no token request.
        fetches: requests made to the source (the token endpoint).
        refreshes_ahead: background refreshes started before expiry.
        fetch_errors: flights that failed.
        stale_served: tokens served while their refresh was failing (stale-if-error).
        waits: calls that awaited a flight.
        lock_timeouts: flights that gave up waiting for another process's lock.
        store_errors: store operations that failed (fail-open or not).
    """

    # "hits" is a property (the hot branch keeps its own count); the others are plain ints
    __slots__ = ("_more_hits", "checked_hits", *(name for name in _COUNTERS if name != "hits"))

    def __init__(self) -> None:
        self.checked_hits = 0  # hits of get_token's checked branch (a plain int: cheap)
        self._more_hits: Callable[[], int] = _none
        self.misses = 0
        self.fetches = 0
        self.refreshes_ahead = 0
        self.fetch_errors = 0
        self.stale_served = 0
        self.waits = 0
        self.lock_timeouts = 0
        self.store_errors = 0
        self.store_hits = 0

    @property
    def hits(self) -> int:
        """Tokens served from the near cache (the hot branch's count added in)."""
        return self.checked_hits + self._more_hits()

    def add_hits_from(self, read: Callable[[], int]) -> None:
        """Count ``read()`` into ``hits``: the manager's hot branch keeps its own count."""
        self._more_hits = read

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for logs, metrics, JSON)."""
        return {name: getattr(self, name) for name in _COUNTERS}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"Stats({fields})"
