"""Events a ``TokenManager`` reports, for hooks, logs and metrics.

Subscribers are plain callables, called synchronously on the event loop, off the hot path
(events come from fetches, failures and the store, never from a cache hit). A subscriber
that raises is logged and otherwise ignored: observability must not break token delivery.
Events carry fingerprints, never tokens or secrets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec

__all__ = ["Event", "EventKind", "Events"]

logger = logging.getLogger("tokenfleet")

EventKind = Literal[
    "token_fetched",
    "fetch_failed",
    "stale_served",
    "cooldown_entered",
    "store_unreachable",
]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something a ``TokenManager`` did or saw.

    Attributes:
        kind: ``token_fetched``, ``fetch_failed``, ``stale_served`` (a token was served
            while its refresh was failing), ``cooldown_entered`` (this process asked the
            fleet to back off) or ``store_unreachable``.
        key: the cache key concerned (no secret in it).
        client_id: the source's client id, when it has one.
        at: Unix time of the event.
        fingerprint: the token's fingerprint, for ``token_fetched`` and ``stale_served``.
        lifetime: seconds the fetched token lives.
        latency: seconds the fetch took.
        error: ``"ClassName: message"`` for failures (messages never contain secrets).
        retry_in: seconds until the next attempt, for failures and cooldowns.
    """

    kind: EventKind
    key: str
    client_id: str | None = None
    at: float = msgspec.field(default_factory=time.time)
    fingerprint: str | None = None
    lifetime: float | None = None
    latency: float | None = None
    error: str | None = None
    retry_in: float | None = None


Subscriber = Callable[[Event], object]


class Events:
    """A list of subscribers; ``emit`` calls each one and survives their failures."""

    __slots__ = ("_subscribers", "client_id")

    def __init__(self, client_id: str | None = None) -> None:
        self._subscribers: list[Subscriber] = []
        self.client_id = client_id  # of every event ``note`` makes

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber."""
        for callback in tuple(self._subscribers):
            try:
                callback(event)
            except Exception:
                logger.exception("tokenfleet: event subscriber %r failed", callback)

    def note(self, kind: EventKind, key: str, **fields: Any) -> None:
        """Emit an event of ``kind`` about ``key``, if anyone listens."""
        if self._subscribers:  # building an Event costs; only when someone listens
            self.emit(Event(kind=kind, key=key, client_id=self.client_id, **fields))
