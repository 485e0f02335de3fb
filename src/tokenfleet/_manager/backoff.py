"""Per-key backoff after failed fetches: how long until a key may be fetched again.

Doubling from ``min_delay`` to ``max_delay`` with a little jitter (so a fleet spreads
out), at least the server's ``Retry-After``, and exactly the remaining time of a fleet
cooldown (which is not one more failure of ours, so it does not double the delay).

Delays are measured on the monotonic clock: an NTP step of the wall clock must not
stretch (or cut short) a backoff. Only a fleet cooldown's end is wall-clock time, because
another process wrote it; it is turned into a delay once, capped at ``max_delay`` (a
store is not trusted to decide how long we stay quiet).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from .._exceptions import FleetCooldown, RateLimited, ServerError
from .._util.bounded import MAX_KEYS, BoundedDict

__all__ = ["MAX_KEYS", "Backoff", "Failure"]


class Failure:
    """The backoff state of a key whose last fetch failed."""

    __slots__ = ("count", "error", "probed_at", "retry_at", "stale_reported")

    def __init__(self, count: int, retry_at: float, error: BaseException) -> None:
        self.count = count
        self.retry_at = retry_at  # monotonic seconds
        self.stale_reported = False
        self.probed_at = float("-inf")  # last store read made instead of the error
        self.error = error.with_traceback(None)  # keep the error, not the frames

    def own_error(self) -> BaseException:
        """A copy of the last error for one caller.

        Raising one shared exception object to many callers rewrites its
        ``__context__`` and ``__traceback__`` each time, so one request's error would
        show another request's unrelated exception and keep its frames alive.
        """
        return own_copy(self.error)


def own_copy(error: BaseException) -> BaseException:
    """A new exception of the same class, message, attributes and cause, with no
    traceback or context of its own yet (``__init__`` is not called again: some of our
    errors take keyword-only arguments)."""
    cls = type(error)
    copy = cls.__new__(cls, *error.args)
    copy.args = error.args
    copy.__dict__.update(error.__dict__)
    copy.__cause__ = error.__cause__
    copy.__suppress_context__ = error.__suppress_context__
    return copy


class Backoff:
    """The failures of every key, and the delay each one waits."""

    def __init__(
        self,
        min_delay: float,
        max_delay: float,
        clock: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_delay = min_delay
        self.max_delay = max_delay
        self._clock = clock  # wall clock: only to read a fleet cooldown's end
        self.monotonic = monotonic
        self._failures: BoundedDict[str, Failure] = BoundedDict()
        self._pending: BoundedDict[str, float] = BoundedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def get(self, key: str) -> Failure | None:
        """The failure state of ``key``, if its last fetch failed."""
        return self._failures.get(key)

    def waiting(self, key: str) -> Failure | None:
        """The failure of ``key`` while its backoff lasts, else ``None``."""
        failure = self._failures.get(key)
        if failure is not None and self.monotonic() < failure.retry_at:
            return failure
        return None

    def delay(self, key: str, error: BaseException) -> float:
        """Seconds ``key`` will wait after ``error``; ``failed`` then uses the same value."""
        if isinstance(error, FleetCooldown):
            delay = min(max(error.until - self._clock(), self.min_delay), self.max_delay)
        else:
            previous = self._failures.get(key)
            count = previous.count + 1 if previous else 1
            delay = min(self.max_delay, self.min_delay * 2.0 ** (count - 1))
            delay *= random.uniform(0.8, 1.0)  # noqa: S311 - spreading, not secrecy
            # RFC 9110 §10.2.3: Retry-After on a 429 and on a 503 (or any 5xx).
            if isinstance(error, RateLimited | ServerError) and error.retry_after:
                delay = max(delay, min(error.retry_after, self.max_delay))
        self._pending[key] = delay
        return delay

    def failed(self, key: str, error: BaseException) -> float:
        """Record a failed fetch of ``key``; returns the delay until the next attempt."""
        delay = self._pending.pop(key, None) or self.delay(key, error)
        self._pending.pop(key, None)
        previous = self._failures.get(key)
        count = previous.count if previous else 0
        if not isinstance(error, FleetCooldown) or previous is None:
            count += 1
        self._failures[key] = Failure(count, self.monotonic() + delay, error)
        return delay

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key``."""
        self._failures.pop(key, None)
        self._pending.pop(key, None)
