"""Counters a ``TokenManager`` keeps, cheap enough for the hot path (plain int attributes)."""

from __future__ import annotations

__all__ = ["Stats"]


class Stats:
    """What a ``TokenManager`` has done since it was created.

    Attributes:
        hits: tokens served from the near cache.
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

    __slots__ = (
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

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.fetches = 0
        self.refreshes_ahead = 0
        self.fetch_errors = 0
        self.stale_served = 0
        self.waits = 0
        self.lock_timeouts = 0
        self.store_errors = 0
        self.store_hits = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for logs, metrics, JSON)."""
        return {name: getattr(self, name) for name in sorted(self.__slots__)}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"Stats({fields})"
