"""The hot branch of ``get_token``: the default-scopes token, handed out with no clock read.

Reading the clock costs about as much as the rest of the hot branch (the benchmark's
``get_token`` rows; docs/architecture.md), so the hot branch does not read it. While
the default key's token is before its refresh point, the manager keeps it in ``_hot``;
one watchdog thread per process clears ``_hot`` at that point, and the next call takes
the checked branch, which reads the clock and starts the refresh.

A thread and a loop timer, each clearing ``_hot`` at the refresh point, because each
covers what the other cannot: a loop blocked by synchronous code (``time.sleep``, a long
computation) cannot run its timers, and the callers it resumes afterwards would get a
token that aged meanwhile, but the thread runs while the loop is blocked (a blocking call
releases the GIL; a computation is made to hand it over every few milliseconds); and a
busy loop that releases and retakes the GIL around its I/O thousands of times a second
can keep a waiting thread from the GIL for hundreds of milliseconds, but then the loop
runs its timers on time. It
re-reads the wall clock at least every ``WATCH_PERIOD`` seconds, so a host suspend or a
wall-clock step is noticed within that time. Invalidations and ``aclose()`` clear
``_hot`` at once. A manager with an injected clock (tests) keeps no hot token: every
call reads that clock. Hits on the hot branch are counted in ``_hot_hits``, which
``Stats.hits`` adds in. The HTTP integrations read ``_hot`` and count their hits in
``_hot_hits`` in place (``_bearer.Bearer.hot``): a call per request cost about 35 ns of
their ~500 (the same middleware with and without it; scenario 9 measures the whole).

The default key is memoized too (``_default_key``, computed once). A source whose cache
identity can move (``RotatingSource``: a rotated TLS client certificate, whose
fingerprint is in the key because tokens may be bound to it, RFC 8705 §3) is asked by
``_rekeyed`` just before a flight starts, never on the hot branch; when it moved, the
memoized keys, the default key and the hot token go, so no token fetched with the old
certificate is handed out again, nor shared with processes still using it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .._models import Token
from .near import Entry, NearCache, Scopes

__all__ = ["WATCH_PERIOD", "HotToken"]

WATCH_PERIOD = 10.0  # seconds: the longest a hot token goes without a wall-clock check


class HotToken:
    """Mixin for ``TokenManager``: the hot token and its hit count."""

    _clock: Callable[[], float]
    _near: NearCache
    _key_for: Callable[[Any], tuple[str, Scopes]]
    _default_key: str
    _hot: Token | None
    _hot_hits: int
    _hot_enabled: bool

    def _init_hot(self, enabled: bool) -> None:
        self._hot = None
        self._hot_hits = 0
        self._hot_enabled = enabled

    def _arm_hot(self, entry: Entry) -> None:
        """Hand out ``entry``'s token on the hot branch until its refresh point."""
        if self._hot_enabled and self._hot is not entry.token:
            self._hot = None
            delay = entry.refresh_at - self._clock()
            if delay > 0:
                self._hot = entry.token
                _watchdog.watch(self, entry.token, entry.refresh_at)
                # And a loop timer: under a busy loop that keeps releasing and retaking
                # the GIL around its I/O, a waiting thread can go without the GIL for
                # hundreds of milliseconds (CPython hands it over on a timeout that each
                # release restarts); the loop's own timer then runs on time instead.
                asyncio.get_running_loop().call_later(delay, self._cool_hot, entry.token)

    def _cool_hot(self, token: Token) -> None:
        if self._hot is token:
            self._hot = None

    def _disarm_hot(self) -> None:
        """No hot token until the checked branch arms one again."""
        self._hot = None

    def _rekeyed(self) -> bool:
        """Just before a flight starts: did the source's cache key change? Then forget
        the memoized keys (and their tokens), the default key and the hot token."""
        if not self._near.identity_moved():
            return False
        self._default_key = self._key_for(None)[0]
        self._disarm_hot()
        return True

    def key_generation(self) -> int:
        """``tokenfleet.RotatingSource``: a manager wrapping this one re-keys with it."""
        self._rekeyed()
        return self._near.generation


class _Watchdog:
    """One daemon thread that clears hot tokens at their refresh points (Unix time)."""

    def __init__(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._due: list[tuple[float, int, weakref.ref[Any], Token]] = []
        self._order = itertools.count()  # ties: no comparing managers or tokens
        self._thread: threading.Thread | None = None

    def watch(self, owner: HotToken, token: Token, at: float) -> None:
        with self._wake:
            heapq.heappush(self._due, (at, next(self._order), weakref.ref(owner), token))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tokenfleet-hot-tokens", daemon=True
                )
                self._thread.start()
            elif self._due[0][3] is token:
                self._wake.notify()  # the new deadline is the earliest

    def _run(self) -> None:
        with self._wake:
            while self._due:
                now = time.time()
                while self._due and self._due[0][0] <= now:
                    _, _, ref, token = heapq.heappop(self._due)
                    owner = ref()
                    if owner is not None and owner._hot is token:
                        owner._hot = None
                if self._due:
                    self._wake.wait(min(self._due[0][0] - now, WATCH_PERIOD))
            self._thread = None  # nothing to watch: the thread ends; watch() starts another

    def forget(self) -> None:
        """In a forked child: the thread did not come along, and neither may its duty."""
        for _, _, ref, _ in self._due:
            owner = ref()
            if owner is not None:
                owner._hot = None
        self._wake = threading.Condition(threading.Lock())  # the parent's may be held
        self._due = []
        self._thread = None


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.forget)
