"""``TokenManager``: near cache, store, single flight, refresh-ahead, stale-if-error.

The data path of ``get_token`` (see docs/architecture.md):

1. near cache: a dict lookup and one clock read; a token before its refresh point is
   returned with no I/O, no lock and no suspension (the hot path);
2. past the refresh point but still usable: returned at once, and the first such caller
   starts one background refresh;
3. no usable token: the caller awaits the key's single flight (one task per key), which
   reads the store, takes the store's lock (fleet-wide for shared stores), reads the store
   again, and only then asks the source.

Failures are shared by every waiter of the flight (each caller raises its own copy),
never written to the store, and put the key in backoff: until it ends, callers get the
current token while it is usable (stale-if-error), else a token another process has put
in the store meanwhile (one store read per ``flight._PROBE_INTERVAL``), else the last error at
once, so a dead server sees about one request per backoff period per key.

Clocks: expiry is wall-clock Unix time, because shared stores compare it across
processes and hosts; delays (backoff, store retries, refetch gaps) are monotonic. We
assume the hosts of a fleet keep NTP time within a few seconds, well inside the leeway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Self

from .._exceptions import ConfigurationError, FetchTimeout, StoreError, TokenFleetError
from .._models import Token
from .._source import KeyedTokenSource, SourceDescription, TokenSource, description_of
from .._util.bounded import MAX_KEYS, BoundedDict
from .._util.closing import AsyncClosing
from .._util.tasks import cancel_and_wait
from ..stores import FleetStore, MemoryStore, TokenStore
from ..stores._protocol import require_store
from . import otel
from .backoff import Backoff, own_copy
from .dpop import store_for
from .env import client_and_store
from .events import Events, Subscriber
from .fleet import FleetSignals
from .flight import Flights, StoreFailures
from .hot import HotToken
from .near import NearCache, Scopes
from .policy import Refresh, check_durations, min_ttl_error
from .stats import Stats

__all__ = ["TokenManager"]

logger = logging.getLogger("tokenfleet")


class TokenManager(HotToken, AsyncClosing):
    """Hands out cached tokens from a source; fetches each one once, ahead of expiry.

    Args:
        source: where tokens come from, usually a :class:`~tokenfleet.ClientCredentials`.
        store: where tokens are kept; default a private :class:`~tokenfleet.MemoryStore`.
            A shared store (file, Redis) makes the single flight fleet-wide.
        refresh: when tokens are refreshed ahead and until when they are handed out, a
            :class:`~tokenfleet.Refresh` (default ``Refresh(leeway=30, ratio=0.8,
            jitter=0.05)``).
        fetch_timeout: longest wait for the source's answer. Default: the source's
            ``timeout`` plus 5 s, or 30 s.
        lock_timeout: longest wait for another process's fetch (the store's lock) before
            fetching anyway. Default: ``fetch_timeout``. A flight takes at most
            ``lock_timeout + fetch_timeout``.
        min_backoff: seconds to wait after a failed fetch before the next one; doubles
            with each further failure.
        max_backoff: the cap on that wait.
        fail_open: on store failure, fetch directly (default) instead of raising
            :class:`~tokenfleet.StoreError`.
        near_cache: keep tokens in process memory until their refresh point (default).
            ``False`` reads the store on every call: only useful to measure the store.
        max_keys: how many cache keys (scope sets, audiences, ...) the near cache holds;
            beyond it the oldest entry goes and is read from the store again. Default 4096.
        namespace: cache-key prefix, required for sources without ``cache_key()``.
        close_source: whether ``aclose()`` closes the source (default yes: the manager
            owns what it is given).
        close_store: whether ``aclose()`` closes the store (default yes).
        telemetry: OpenTelemetry metrics and spans; ``None`` (default) turns them on when
            ``opentelemetry-api`` is installed (``pip install tokenfleet[otel]``).
        clock: Unix-time clock (expiry, fleet cooldowns), injectable for tests.
        monotonic: the clock of delays (backoff, store retries), injectable for tests.
    """

    def __init__(
        self,
        source: TokenSource,
        store: TokenStore | None = None,
        *,
        refresh: Refresh = Refresh(),  # noqa: B008 - frozen value object, safe to share
        fetch_timeout: float | None = None,
        lock_timeout: float | None = None,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        fail_open: bool = True,
        near_cache: bool = True,
        max_keys: int = MAX_KEYS,
        namespace: str | None = None,
        close_source: bool = True,
        close_store: bool = True,
        telemetry: bool | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(source, TokenSource):
            raise ConfigurationError("source must have an async token(scopes) method")
        if not isinstance(source, KeyedTokenSource) and not namespace:
            raise ConfigurationError(
                f"{type(source).__name__} has no cache_key(); pass namespace='...' so its "
                "tokens get a stable cache key"
            )
        if not isinstance(refresh, Refresh):
            raise ConfigurationError("refresh must be a tokenfleet.Refresh(...)")
        check_durations(min_backoff, max_backoff, fetch_timeout, lock_timeout)
        if not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigurationError("max_keys must be an int >= 1")
        self.source = source
        # DPoP keys go to a shared store only sealed; else tokens stay per process.
        if store is not None:
            require_store(store, "TokenManager(store=...)")
        self.store: TokenStore = store_for(source, store if store is not None else MemoryStore())
        self.stats = Stats()
        self._init_hot(enabled=clock is time.time)
        self.stats.add_hits_from(lambda: self._hot_hits)
        self.refresh = refresh
        described = description_of(source)
        default_timeout = described.timeout + 5.0 if described.timeout is not None else 30.0
        fetch_timeout = float(fetch_timeout or default_timeout)
        self.fail_open = fail_open
        self.near_cache = near_cache
        self.max_keys = max_keys
        self.client_id = described.client_id
        self.events = Events(self.client_id)
        self._close_source = close_source
        self._close_store = close_store
        self._clock = clock
        self._closed = False
        self._listener: asyncio.Task[None] | None = None
        self._backoff = Backoff(min_backoff, max_backoff, clock, monotonic)
        self._store_failed = StoreFailures(self.stats, fail_open, self.events.note)
        self._near = NearCache(source, namespace, max_keys, near_cache)
        self._near_entries = self._near.entries  # the hot path reads this dict directly
        self._key_for = self._near.key_for
        self._fleet = (
            FleetSignals(self.store, clock, self._store_failed, max_backoff)
            if isinstance(self.store, FleetStore)
            else None
        )
        if telemetry is None:
            telemetry = otel.available()
        self._telemetry = (
            otel.Telemetry(self.client_id, self.stats, self.events) if telemetry else None
        )
        self._flight = Flights(
            source=source,
            store=self.store,
            near=self._near,
            refresh=refresh,
            backoff=self._backoff,
            fleet=self._fleet,
            stats=self.stats,
            clock=clock,
            lock_timeout=float(lock_timeout or fetch_timeout),
            fetch_timeout=fetch_timeout,
            emit=self.events.note,
            store_failed=self._store_failed,
            span=self._telemetry.span if self._telemetry else None,
            label=self.client_id,
        )
        self._flights = self._flight.tasks
        self._too_short: BoundedDict[str, float] = BoundedDict()  # span that failed a min_ttl
        self._default_key = self._key_for(None)[0]
        # A manager is a source too: it describes its source, with its own deadline.
        self._description = replace(described, timeout=self.lock_timeout + fetch_timeout)

    @classmethod
    def from_env(
        cls, prefix: str = "TOKENFLEET_", *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Self:
        """A manager, its client and its store, configured as the ``tokenfleet`` CLI is.

        The client comes from :meth:`ClientCredentials.from_env`; the store from
        ``{prefix}STORE`` (a URL for :func:`~tokenfleet.store_from_url`; unset: a
        private ``MemoryStore``). ``kwargs`` go to ``TokenManager(...)``.

        Raises:
            ConfigurationError: a setting is missing (all are listed) or invalid.
        """
        return cls(*client_and_store(prefix, env), **kwargs)

    @property
    def fetch_timeout(self) -> float:
        """Longest wait for the source's answer, in seconds."""
        return self._flight.fetch_timeout

    @property
    def lock_timeout(self) -> float:
        """Longest wait for another process's fetch (the store's lock), in seconds."""
        return self._flight.lock_timeout

    # ------------------------------------------------------------------ the hot path

    async def get_token(
        self, scopes: str | Iterable[str] | None = None, min_ttl: float = 0.0
    ) -> Token:
        """A valid token for ``scopes`` (``None``: the source's default scopes).

        Args:
            scopes: its own cache entry per *set* of scopes.
            min_ttl: the token must stay usable at least this many more seconds (for a
                caller about to start a long operation); a cached token with less left
                is replaced by a fresh one. Pass it by name: it may be given by
                position only because a keyword-only parameter costs every call
                ~40 ns on CPython 3.11 (see docs/architecture.md).

        Raises:
            TokenFleetError: no usable token could be had (the fetch's own error).
        """
        hot = self._hot  # the default token before its refresh point (see hot.py)
        if hot is not None and scopes is None and not min_ttl:
            self._hot_hits += 1
            return hot
        key = self._default_key if scopes is None else self._key_for(scopes)[0]
        entry = self._near_entries.get(key)
        if entry is not None and not min_ttl and self._clock() < entry.refresh_at:
            self.stats.checked_hits += 1
            if key is self._default_key:
                self._arm_hot(entry)
            return entry.token
        return await self._get_slow(key, scopes, min_ttl)

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        """The ``TokenSource`` method: same as :meth:`get_token`."""
        return await self.get_token(scopes)

    def describe(self) -> SourceDescription:
        """The source's :class:`~tokenfleet.SourceDescription`, passed through (its
        ``timeout`` is this manager's longest wait: ``lock_timeout + fetch_timeout``)."""
        return self._description

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for each :class:`~tokenfleet.Event` (token fetched,
        fetch failed, stale token served, cooldown entered, store unreachable).

        Callbacks run on the event loop, never on the hot path; one that raises is
        logged and ignored. Returns a function that unsubscribes.
        """
        return self.events.subscribe(callback)

    def cache_key(self, scopes: str | Iterable[str] | None = None) -> str:
        """The key under which the token for ``scopes`` is cached and single-flighted."""
        return self._key_for(scopes)[0]

    # ------------------------------------------------------------------ the slow path

    async def _get_slow(
        self, key: str, scopes: str | Iterable[str] | None, min_ttl: float
    ) -> Token:
        if self._closed:
            raise ConfigurationError("this TokenManager is closed")
        if self._fleet is not None and self._listener is None:
            listen = self._fleet.listen(self._dropped_elsewhere, lambda: self._closed)
            self._listener = asyncio.get_running_loop().create_task(
                listen, name="tokenfleet:invalidations"
            )
        if not isinstance(min_ttl, int | float) or not 0 <= min_ttl < math.inf:
            raise ConfigurationError("min_ttl must be a finite number of seconds >= 0")
        too_short = self._too_short.get(key)
        if min_ttl and too_short is not None and min_ttl >= too_short:
            raise min_ttl_error(min_ttl, too_short)  # known: no fetch can help
        now = self._clock()
        entry = self._near.get(key) if self.near_cache else await self._flight.store_entry(key)
        normalized = self._key_for(scopes)[1]
        if entry is not None and entry.usable_until - now > min_ttl:
            if now < entry.refresh_at or self._flight.refresh_ahead(
                key, normalized, entry.token, self._rekeyed
            ):
                self.stats.checked_hits += 1
                return entry.token
        else:
            self.stats.misses += 1
            stale = entry.token if entry else None
            token = await self._await_flight(key, normalized, stale, min_ttl)
            if token is not None:
                return token
        # The source's cache identity moved (see hot.py): fetch under the new key.
        return await self._get_slow(self._key_for(scopes)[0], scopes, min_ttl)

    async def _await_flight(
        self, key: str, scopes: Scopes, stale: Token | None, min_ttl: float
    ) -> Token | None:
        """The token of ``key``'s flight; None: the cache key changed before it started."""
        for _ in range(3):
            task = self._flights.get(key)
            if task is None:
                failure = self._backoff.waiting(key)
                if failure is not None:
                    found = await self._flight.probe_store(key, failure, stale)
                    if found is not None and self._flight.good_for(key, found, min_ttl):
                        return found
                    raise failure.own_error()
                if self._rekeyed():
                    return None
                task = self._flight.start(key, scopes, stale)
            self.stats.waits += 1
            error: BaseException | None = None
            try:
                token = await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if task.cancelled() and self._closed and current and not current.cancelling():
                    raise ConfigurationError("this TokenManager was closed") from None
                raise
            except TokenFleetError as exc:  # one error for every waiter: each gets a copy
                error = own_copy(exc)
            if error is not None:
                raise error  # outside the except: its context is the caller's, not a waiter's
            if self._flight.good_for(key, token, min_ttl):
                return token
            usable_span = self.refresh.schedule(token)[0] - token.issued_at
            if usable_span <= min_ttl:
                self._too_short[key] = usable_span
                raise min_ttl_error(min_ttl, usable_span, token.lifetime)
            stale = token
        raise FetchTimeout(
            "three fetched tokens in a row were invalidated (or too short-lived) before they "
            "could be handed out; is a resource server rejecting every new token?"
        )

    # ------------------------------------------------------------------ invalidate, close

    async def invalidate(
        self, token: Token | None = None, scopes: str | Iterable[str] | None = None
    ) -> None:
        """Drop a token, e.g. after a resource server answered 401.

        With ``token``, only that token is dropped, under whatever scopes it was handed
        out: if a newer one is already cached it stays (compare-and-delete), so a burst of
        401s for one old token causes one refetch. Without it, this process's token for
        ``scopes`` is dropped, and the store's copy if it is the same one. Shared stores
        tell the other processes to drop it too.
        """
        if scopes is not None:
            key = self._key_for(scopes)[0]
        elif token is not None:
            key = self._near.key_of(token, self._default_key)
        else:
            key = self._default_key
        if token is None and key not in self._near:
            return  # nothing of ours: another process's (newer) token is not ours to drop
        if key == self._default_key:
            self._disarm_hot()
        repeat = token is not None and self._near.is_dropped(key, token)
        token = self._near.invalidate(key, token)
        if not repeat:
            self._flight.note_invalidation(key)
        try:
            await self.store.delete(key, token)
        except StoreError as exc:
            self._store_failed(exc)

    def _dropped_elsewhere(self, key: str, fingerprint: str) -> None:
        """Another process invalidated a token: stop serving it here too."""
        if self._near.drop_fingerprint(key, fingerprint):
            if key == self._default_key:
                self._disarm_hot()
            self._flight.note_invalidation(key)

    async def aclose(self) -> None:
        """Cancel background refreshes, then close the source and store (if owned)."""
        if self._closed:
            return
        self._closed = True
        self._disarm_hot()
        self._near.clear()
        await self._flights.cancel_all()
        if self._close_store:
            await self.store.aclose()  # also ends the store's invalidation iterators
        if self._listener is not None:
            await cancel_and_wait([self._listener])
        aclose = getattr(self.source, "aclose", None)
        if self._close_source and aclose is not None:
            await aclose()

    def __repr__(self) -> str:
        return f"TokenManager(source={self.source!r}, store={self.store!r})"
