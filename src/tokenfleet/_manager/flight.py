"""The flight: how one key gets a new token, once per key however many callers wait.

Store read → store lock → store read → fleet cooldown check → source fetch → store
write. The lock is fleet-wide for shared stores, so after waiting for it we read the
store again: another process has usually just written the token we need. A failure is
shared by every waiter of the flight, never written to the store, and puts the key in
backoff (``_done``); see docs/architecture.md.

Two rules keep a fleet's cost bounded when things go wrong:

* a background refresh that finds the store down keeps serving the current token and
  tries the store again later, fetching on its own only when the token is about to stop
  being usable (``HOLD_SHARE`` of the refresh window left): a store outage is not a herd;
* a refetch caused by an invalidation (a 401, a fleet message) waits until at least
  ``min_backoff`` (at most ``_MAX_REFETCH_GAP``) after the previous one for the same key,
  so a resource server that rejects every token costs one token request per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, AsyncExitStack
from typing import Any

from .._exceptions import FetchTimeout, InvalidClient, RateLimited, ServerError, StoreError
from .._models import Token, unusable
from .._source import TokenSource
from .._util.bounded import BoundedDict
from ..stores import TokenStore, WaitingStore
from .backoff import Backoff, Failure
from .fleet import FleetSignals
from .near import Entry, NearCache, Scopes
from .policy import Refresh
from .singleflight import SingleFlight
from .stats import Stats

__all__ = ["Flights", "StoreFailures", "error_summary"]

logger = logging.getLogger("tokenfleet")

Emit = Callable[..., None]  # emit(kind, key, **fields)
_STORE_WARNING_PERIOD = 60.0  # seconds between two "store failing" warnings
_PROBE_INTERVAL = 0.25  # in backoff: seconds between two store reads for another's token
HOLD_SHARE = 0.25  # store down: hold the current token until this share of the window is left
_MAX_REFETCH_GAP = 5.0  # the invalidation refetch interval is min_backoff, at most this


def error_summary(error: BaseException) -> str:
    """``"TypeName: message"``, as events carry an error (messages hold no secret)."""
    return f"{type(error).__name__}: {error}"


class StoreFailures:
    """What a failing store operation does: counted, then raised (``fail_open=False``) or
    logged, at most one WARNING (and event) per minute, and the caller goes on without
    the store."""

    def __init__(self, stats: Stats, fail_open: bool, emit: Emit) -> None:
        self._stats = stats
        self._fail_open = fail_open
        self._emit = emit
        self._warned_at = float("-inf")

    def __call__(self, exc: StoreError) -> None:
        self._stats.store_errors += 1
        if not self._fail_open:
            raise exc
        now = time.monotonic()
        if now - self._warned_at >= _STORE_WARNING_PERIOD:
            self._warned_at = now
            self._emit("store_unreachable", "", error=error_summary(exc))
            logger.warning(
                "tokenfleet: token store failing, going on without it (fail_open): %s "
                "(next warning in %.0f s at the earliest)",
                exc,
                _STORE_WARNING_PERIOD,
            )
        else:
            logger.debug("tokenfleet: store error (fail-open): %s", exc)


class Flights:
    """The in-flight fetches of one manager, one task per key."""

    def __init__(
        self,
        *,
        source: TokenSource,
        store: TokenStore,
        near: NearCache,
        refresh: Refresh,
        backoff: Backoff,
        fleet: FleetSignals | None,
        stats: Stats,
        clock: Callable[[], float],
        lock_timeout: float,
        fetch_timeout: float,
        emit: Emit,
        store_failed: Callable[[StoreError], None],
        span: Callable[[str], AbstractContextManager[Any]] | None,
        label: str | None,
    ) -> None:
        self.tasks: SingleFlight[Token] = SingleFlight()
        self.lock_timeout = lock_timeout
        self.fetch_timeout = fetch_timeout
        self._source = source
        self._store = store
        # Checked once: isinstance against a runtime Protocol costs ~50 µs per call.
        self._waiting = store if isinstance(store, WaitingStore) else None
        self._near = near
        self._refresh = refresh
        self._backoff = backoff
        self._fleet = fleet
        self._stats = stats
        self._clock = clock
        self._emit = emit
        self._store_failed = store_failed
        self._span = span
        self._label = label
        self.store_retry_at: BoundedDict[str, float] = (
            BoundedDict()
        )  # monotonic; a held key's next store try
        self._refetch_gap = min(backoff.min_delay, _MAX_REFETCH_GAP)
        self._refetch_at: BoundedDict[str, float] = (
            BoundedDict()
        )  # monotonic; the next invalidation refetch
        self._refetch_last: BoundedDict[str, float] = BoundedDict()
        self._warned_unusable: BoundedDict[str, bool] = BoundedDict()

    def start(
        self, key: str, scopes: Scopes, stale: Token | None, *, ahead: bool = False
    ) -> asyncio.Task[Token]:
        """Start the flight of ``key``, replacing ``stale`` (the token held, if any).

        ``ahead``: a background refresh, so ``stale`` is still usable and no caller needs
        the new token yet (it may be held through a store outage).
        """
        return self.tasks.start(key, self._run(key, scopes, stale, ahead), self._done)

    def note_invalidation(self, key: str) -> None:
        """An invalidation dropped the token of ``key``: gate the refetch it causes."""
        now = self._backoff.monotonic()
        at = max(now, self._refetch_last.get(key, float("-inf")) + self._refetch_gap)
        self._refetch_last[key] = at
        self._refetch_at[key] = at

    async def _run(self, key: str, scopes: Scopes, stale: Token | None, ahead: bool) -> Token:
        deadline = self.lock_timeout + self.fetch_timeout
        try:
            async with asyncio.timeout(deadline):
                token = await self._store_first(key, scopes, stale, ahead)
        except FetchTimeout:
            raise
        except TimeoutError:
            raise FetchTimeout(
                f"no token within {deadline:g} s (lock_timeout + fetch_timeout)"
            ) from None
        self._near.put(key, token, *self._refresh.schedule(token, self._refresh.draw_jitter()))
        return token

    async def _store_first(
        self, key: str, scopes: Scopes, stale: Token | None, ahead: bool
    ) -> Token:
        try:
            token = await self._read(key, stale)
        except StoreError as exc:
            return await self._without_store(exc, key, scopes, stale, ahead)
        if token is not None:
            self._stats.store_hits += 1
            return token
        return await self._locked_fetch(key, scopes, stale, ahead)

    async def _without_store(
        self, exc: StoreError, key: str, scopes: Scopes, stale: Token | None, ahead: bool
    ) -> Token:
        """The store is unreachable: hold the current token if there is time, else fetch
        locally (fail-open; ``fail_open=False`` raises instead)."""
        self._store_failed(exc)
        if ahead and stale is not None and self.can_hold(stale):
            self.store_retry_at[key] = self._backoff.monotonic() + self._backoff.min_delay
            return stale
        return await self._fetch(key, scopes)

    def can_hold(self, token: Token) -> bool:
        """Whether ``token`` leaves enough time to wait for the store to come back."""
        usable_until, refresh_at = self._refresh.schedule(token)
        return usable_until - self._clock() > (usable_until - refresh_at) * HOLD_SHARE

    async def _locked_fetch(
        self, key: str, scopes: Scopes, stale: Token | None, ahead: bool
    ) -> Token:
        async with AsyncExitStack() as stack:
            try:
                outcome = await stack.enter_async_context(self._lock(key, stale))
            except StoreError as exc:  # unreachable store: do not wait for a lock
                return await self._without_store(exc, key, scopes, stale, ahead)
            if isinstance(outcome, Token):
                self._stats.store_hits += 1
                return outcome  # another process's token landed while we waited
            if not outcome:
                self._stats.lock_timeouts += 1
                logger.warning(
                    "tokenfleet: waited %.1f s for another process's fetch of %s; "
                    "fetching ourselves unless its token is in the store by now",
                    self.lock_timeout,
                    key,
                )
            # Holding the lock, or after lock_timeout: the token may have landed meanwhile.
            token = await self.read_store(key, stale)
            if token is not None:
                self._stats.store_hits += 1
                return token
            if self._fleet is not None:
                await self._fleet.check_cooldown(key)
            return await self._fetch(key, scopes)
        raise AssertionError("unreachable")  # pragma: no cover - AsyncExitStack swallows nothing

    def _lock(self, key: str, stale: Token | None) -> AbstractAsyncContextManager[bool | Token]:
        """The store's lock; a waiting store also ends the wait when the token lands."""
        if self._waiting is not None:
            accept = functools.partial(self._usable, key, stale)
            return self._waiting.lock_or_token(key, self.lock_timeout, accept)
        return self._store.lock(key, self.lock_timeout)

    def refresh_ahead(
        self, key: str, scopes: Scopes, current: Token, rekeyed: Callable[[], bool]
    ) -> bool:
        """``current`` is past its refresh point: start one background flight, unless one
        runs, the key is in backoff (stale-if-error), or the store is being waited out.

        False when ``rekeyed()``, asked just before the start, says the source's cache key
        changed (a rotated TLS client certificate): then nothing starts under the old key.
        """
        failure = self._backoff.get(key)
        if failure is not None:
            self._stats.stale_served += 1
            if not failure.stale_reported:
                failure.stale_reported = True  # one event per failed attempt, not per call
                self._emit("stale_served", key, fingerprint=current.fingerprint)
        mono = self._backoff.monotonic()
        if key in self.tasks or (failure is not None and mono < failure.retry_at):
            return True
        if self.store_retry_at.get(key, float("-inf")) > mono and self.can_hold(current):
            return True  # the store was down: hold the current token until it is retried
        if rekeyed():
            return False
        self._stats.refreshes_ahead += 1
        self.start(key, scopes, current, ahead=True)
        return True

    async def probe_store(self, key: str, failure: Failure, stale: Token | None) -> Token | None:
        """In backoff: a token another process has stored meanwhile (a read, no fetch)."""
        now = self._backoff.monotonic()
        if now - failure.probed_at < _PROBE_INTERVAL:
            return None
        failure.probed_at = now
        token = await self.read_store(key, stale)
        if token is not None:
            self._stats.store_hits += 1
            self._near.put(key, token, *self._refresh.schedule(token, self._refresh.draw_jitter()))
        return token

    def good_for(self, key: str, token: Token, min_ttl: float) -> bool:
        """Whether ``token`` is not tombstoned and stays usable more than ``min_ttl`` s."""
        if self._near.is_dropped(key, token):
            return False
        usable_until, _ = self._refresh.schedule(token)
        return usable_until - self._clock() > min_ttl

    async def store_entry(self, key: str) -> Entry | None:
        """Without a near cache: the store's token as an entry (no jitter)."""
        token = await self.read_store(key, None)
        if token is None:
            return None
        return Entry(token, *self._refresh.schedule(token))

    async def read_store(self, key: str, stale: Token | None) -> Token | None:
        """A usable token from the store that is not the one being replaced."""
        try:
            return await self._read(key, stale)
        except StoreError as exc:
            self._store_failed(exc)
            return None

    async def _read(self, key: str, stale: Token | None) -> Token | None:
        token = await self._store.get(key)
        return token if token is not None and self._usable(key, stale, token) else None

    def _usable(self, key: str, stale: Token | None, token: Token) -> bool:
        """Whether a token from the store may be handed out in place of ``stale``."""
        if stale is not None and token.access_token == stale.access_token:
            return False
        if self._near.is_dropped(key, token):
            return False
        problem = unusable(token)
        if problem is not None:  # a shared store is not trusted: fetch a good one instead
            if not self._warned_unusable.get(key):
                self._warned_unusable[key] = True
                logger.warning(
                    "tokenfleet: the store holds a token for %s with %s; ignoring it and "
                    "fetching a new one (is something else writing to the store?)",
                    key,
                    problem,
                )
            return False
        usable_until, _ = self._refresh.schedule(token)
        return self._clock() < usable_until

    async def _fetch(self, key: str, scopes: Scopes) -> Token:
        gate = self._refetch_at.pop(key, None)
        wait = 0.0 if gate is None else gate - self._backoff.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # see note_invalidation
        self._stats.fetches += 1
        started = time.monotonic()
        span = self._span(key) if self._span else contextlib.nullcontext()
        try:
            with span:
                async with asyncio.timeout(self.fetch_timeout):
                    token = await self._source.token(scopes)
        except FetchTimeout:
            raise
        except TimeoutError:
            raise FetchTimeout(f"no token within fetch_timeout={self.fetch_timeout:g} s") from None
        except (RateLimited, ServerError, InvalidClient) as exc:
            if self._fleet is not None:
                delay = self._backoff.delay(key, exc)  # the same delay here and for the fleet
                await self._fleet.record_cooldown(key, delay, exc)
                self._emit("cooldown_entered", key, error=error_summary(exc), retry_in=delay)
            raise
        latency = time.monotonic() - started
        logger.info(
            "tokenfleet: fetched token %s for %s (scopes %s, lifetime %.0f s, %.0f ms)",
            token.fingerprint,
            self._label or key,
            " ".join(token.scopes) or "-",
            token.lifetime,
            latency * 1000,
        )
        self._emit(
            "token_fetched",
            key,
            fingerprint=token.fingerprint,
            lifetime=token.lifetime,
            latency=latency,
        )
        ttl = token.expires_at - self._clock()
        if ttl > 0:
            try:
                await self._store.set(key, token, ttl)
            except StoreError as exc:
                self._store_failed(exc)
        return token

    def _done(self, key: str, task: asyncio.Task[Token]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._backoff.succeeded(key)
            return
        self._stats.fetch_errors += 1
        delay = self._backoff.failed(key, error)
        self._emit("fetch_failed", key, error=error_summary(error), retry_in=delay)
        entry = self._near.get(key)
        usable = entry is not None and self._clock() < entry.usable_until
        logger.warning(
            "tokenfleet: token fetch for %s failed (%s: %s); %s; next try in %.1f s",
            key,
            type(error).__name__,
            error,
            "serving the current token meanwhile" if usable else "no usable token",
            delay,
        )
