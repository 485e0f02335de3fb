"""``TokenManager``: near cache, store, single flight, refresh-ahead, stale-if-error.

The data path of ``get_token`` (see docs/architecture.md):

1. near cache: a dict lookup and one clock read; a token before its refresh point is
   returned with no I/O, no lock and no suspension (the hot path);
2. past the refresh point but still usable: returned at once, and the first such caller
   starts one background refresh;
3. no usable token: the caller awaits the key's single flight (one task per key), which
   reads the store, takes the store's lock (fleet-wide for shared stores), reads the store
   again, and only then asks the source.

Failures are shared by every waiter of the flight, never written to the store, and put
the key in backoff: until it ends, callers get the current token while it is usable
(stale-if-error) or the last error at once, so a dead server sees about one request per
backoff period per key.

Clocks: expiry is wall-clock Unix time, because shared stores compare it across
processes and hosts; nothing here mixes it with the monotonic clock. We assume the hosts
of a fleet keep NTP time within a few seconds, well inside the leeway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

from .._client.credentials import ClientCredentials
from .._client.env import client_kwargs, read_settings
from .._client.request import cache_key, normalize_scopes
from .._exceptions import (
    ConfigurationError,
    FetchTimeout,
    InvalidClient,
    RateLimited,
    ServerError,
    StoreError,
)
from .._models import Token
from .._source import KeyedTokenSource, TokenSource
from .._util.bounded import MAX_KEYS, bounded_put
from .._util.tasks import cancel_and_wait
from ..stores import FleetStore, MemoryStore, TokenStore, store_from_url
from . import otel
from .backoff import Backoff
from .dpop import store_for
from .events import Event, EventKind, Events, Subscriber
from .fleet import FleetSignals
from .policy import schedule
from .singleflight import SingleFlight
from .stats import Stats

__all__ = ["TokenManager"]

logger = logging.getLogger("tokenfleet")

Scopes = tuple[str, ...] | None
_STORE_WARNING_PERIOD = 60.0  # seconds between two "store failing" warnings


class _Entry:
    """A near-cache entry: the token and its two deadlines (Unix seconds)."""

    __slots__ = ("refresh_at", "token", "usable_until")

    def __init__(self, token: Token, usable_until: float, refresh_at: float) -> None:
        self.token = token
        self.usable_until = usable_until
        self.refresh_at = refresh_at


class TokenManager:
    """Hands out cached tokens from a source; fetches each one once, ahead of expiry.

    Args:
        source: where tokens come from, usually a :class:`~tokenfleet.ClientCredentials`.
        store: where tokens are kept; default a private :class:`~tokenfleet.MemoryStore`.
            A shared store (file, Redis) makes the single flight fleet-wide.
        leeway: seconds before ``expires_at`` from which a token is no longer handed out;
            shrinks to a tenth of the lifetime for short-lived tokens. Default 30.
        refresh_ratio: fraction of the lifetime after which the first caller starts a
            background refresh. Default 0.8.
        jitter: up to this fraction of the lifetime is taken off the refresh point, at
            random per process, so a fleet does not refresh in the same instant. Default 0.05.
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
        clock: Unix-time clock, injectable for tests.
    """

    def __init__(
        self,
        source: TokenSource,
        store: TokenStore | None = None,
        *,
        leeway: float = 30.0,
        refresh_ratio: float = 0.8,
        jitter: float = 0.05,
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
    ) -> None:
        if not isinstance(source, TokenSource):
            raise ConfigurationError("source must have an async token(scopes) method")
        if not isinstance(source, KeyedTokenSource) and not namespace:
            raise ConfigurationError(
                f"{type(source).__name__} has no cache_key(); pass namespace='...' so its "
                "tokens get a stable cache key"
            )
        if not 0.0 < refresh_ratio <= 1.0 or not 0.0 <= jitter < refresh_ratio:
            raise ConfigurationError("need 0 < refresh_ratio <= 1 and 0 <= jitter < refresh_ratio")
        if leeway < 0 or min_backoff <= 0 or max_backoff < min_backoff:
            raise ConfigurationError("need leeway >= 0 and 0 < min_backoff <= max_backoff")
        self.source = source
        # DPoP keys go to a shared store only sealed; else tokens stay per process.
        self.store: TokenStore = store_for(source, store if store is not None else MemoryStore())
        self.stats = Stats()
        self.leeway = float(leeway)
        self.refresh_ratio = float(refresh_ratio)
        self.jitter = float(jitter)
        source_timeout = getattr(source, "timeout", None)
        default_timeout = source_timeout + 5.0 if isinstance(source_timeout, float) else 30.0
        self.fetch_timeout = float(fetch_timeout or default_timeout)
        self.lock_timeout = float(lock_timeout or self.fetch_timeout)
        self.fail_open = fail_open
        self.near_cache = near_cache
        if not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigurationError("max_keys must be an int >= 1")
        self.max_keys = max_keys
        self._backoff = Backoff(min_backoff, max_backoff, clock)
        self._namespace = namespace
        self._close_source = close_source
        self._close_store = close_store
        self._clock = clock
        self._near: dict[str, _Entry] = {}
        self._keys: dict[object, tuple[str, tuple[str, ...] | None]] = {}
        self._flights: SingleFlight[Token] = SingleFlight()
        self._invalidated: dict[str, str] = {}
        self._closed = False
        self._fleet = (
            FleetSignals(self.store, clock, self._store_failed)
            if isinstance(self.store, FleetStore)
            else None
        )
        self.events = Events()
        self._listener: asyncio.Task[None] | None = None
        self._store_warned_at = float("-inf")
        client_id = getattr(source, "client_id", None)
        self.client_id: str | None = client_id if isinstance(client_id, str) else None
        self._default_key = self._key_for(None)[0]
        if telemetry is None:
            telemetry = otel.available()
        self._telemetry = otel.Telemetry(self) if telemetry else None

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
        settings = read_settings(env, prefix=prefix)
        client = ClientCredentials(**client_kwargs(settings))
        store = store_from_url(settings.store) if settings.store else None
        return cls(client, store, **kwargs)

    # ------------------------------------------------------------------ the hot path

    async def get_token(
        self, scopes: str | Iterable[str] | None = None, *, min_ttl: float = 0.0
    ) -> Token:
        """A valid token for ``scopes`` (``None``: the source's default scopes).

        Args:
            scopes: its own cache entry per *set* of scopes.
            min_ttl: the token must stay usable at least this many more seconds (for a
                caller about to start a long operation); a cached token with less left
                is replaced by a fresh one.

        Raises:
            TokenFleetError: no usable token could be had (the fetch's own error).
        """
        key = self._default_key if scopes is None else self._key_for(scopes)[0]
        entry = self._near.get(key)
        if entry is not None and not min_ttl and self._clock() < entry.refresh_at:
            self.stats.hits += 1
            return entry.token
        return await self._get_slow(key, scopes, min_ttl)

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        """The ``TokenSource`` method: same as :meth:`get_token`."""
        return await self.get_token(scopes)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for each :class:`~tokenfleet.Event` (token fetched,
        fetch failed, stale token served, cooldown entered, store unreachable).

        Callbacks run on the event loop, never on the hot path; one that raises is
        logged and ignored. Returns a function that unsubscribes.
        """
        return self.events.subscribe(callback)

    def _emit(self, kind: EventKind, key: str, **fields: Any) -> None:
        if self.events:  # building an Event costs; only when someone listens
            self.events.emit(Event(kind=kind, key=key, client_id=self.client_id, **fields))

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
            listen = self._fleet.listen(self._drop_invalidated, lambda: self._closed)
            self._listener = asyncio.get_running_loop().create_task(
                listen, name="tokenfleet:invalidations"
            )
        if min_ttl < 0:
            raise ConfigurationError("min_ttl must be >= 0 seconds")
        now = self._clock()
        entry = self._near.get(key) if self.near_cache else await self._store_entry(key)
        normalized = self._key_for(scopes)[1]
        if entry is not None and entry.usable_until - now > min_ttl:
            if now >= entry.refresh_at:
                self._refresh_ahead(key, normalized, entry.token, now)
            self.stats.hits += 1
            return entry.token
        self.stats.misses += 1
        return await self._await_flight(key, normalized, entry.token if entry else None, min_ttl)

    async def _store_entry(self, key: str) -> _Entry | None:
        """Without a near cache: the store's token as an entry (no jitter)."""
        token = await self._read_store(key, None)
        if token is None:
            return None
        return _Entry(token, *self._schedule(token, 0.0))

    def _refresh_ahead(self, key: str, scopes: Scopes, current: Token, now: float) -> None:
        failure = self._backoff.get(key)
        if failure is not None:
            self.stats.stale_served += 1
            if not failure.stale_reported:
                failure.stale_reported = True  # one event per failed attempt, not per call
                self._emit("stale_served", key, fingerprint=current.fingerprint)
        if key in self._flights or (failure is not None and now < failure.retry_at):
            return
        self.stats.refreshes_ahead += 1
        self._start_flight(key, scopes, current)

    async def _await_flight(
        self, key: str, scopes: Scopes, stale: Token | None, min_ttl: float
    ) -> Token:
        for _ in range(3):
            task = self._flights.get(key)
            if task is None:
                error = self._backoff.waiting(key)
                if error is not None:
                    raise error.with_traceback(None)
                task = self._start_flight(key, scopes, stale)
            self.stats.waits += 1
            try:
                token = await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if task.cancelled() and self._closed and current and not current.cancelling():
                    raise ConfigurationError("this TokenManager was closed") from None
                raise
            if self._good_for(key, token, min_ttl):
                return token
            usable_span = self._schedule(token, 0.0)[0] - token.issued_at
            if usable_span <= min_ttl:
                raise ConfigurationError(
                    f"no token can stay usable for min_ttl={min_ttl:g} s: the server grants "
                    f"{token.lifetime:.0f} s lifetimes, usable for {usable_span:.0f} s"
                )
            stale = token
        raise FetchTimeout(
            "three fetched tokens in a row were invalidated (or too short-lived) before they "
            "could be handed out; is a resource server rejecting every new token?"
        )

    def _good_for(self, key: str, token: Token, min_ttl: float) -> bool:
        if self._invalidated.get(key) == token.access_token:
            return False
        usable_until, _ = self._schedule(token, 0.0)
        return usable_until - self._clock() > min_ttl

    # ------------------------------------------------------------------ the flight

    def _start_flight(self, key: str, scopes: Scopes, stale: Token | None) -> asyncio.Task[Token]:
        return self._flights.start(key, self._flight(key, scopes, stale), self._flight_done)

    async def _flight(self, key: str, scopes: Scopes, stale: Token | None) -> Token:
        deadline = self.lock_timeout + self.fetch_timeout
        try:
            async with asyncio.timeout(deadline):
                token = await self._read_store(key, stale)
                if token is None:
                    token = await self._locked_fetch(key, scopes, stale)
        except FetchTimeout:
            raise
        except TimeoutError:
            raise FetchTimeout(
                f"no token within {deadline:g} s (lock_timeout + fetch_timeout)"
            ) from None
        self._remember(key, token)
        return token

    async def _locked_fetch(self, key: str, scopes: Scopes, stale: Token | None) -> Token:
        async with AsyncExitStack() as stack:
            try:
                acquired = await stack.enter_async_context(self.store.lock(key, self.lock_timeout))
            except StoreError as exc:
                self._store_failed(exc)  # unreachable store: fetch locally, do not wait
                return await self._fetch(key, scopes)
            if not acquired:
                self.stats.lock_timeouts += 1
                logger.warning(
                    "tokenfleet: waited %.1f s for another process's fetch of %s; "
                    "fetching ourselves",
                    self.lock_timeout,
                    key,
                )
            else:
                token = await self._read_store(key, stale)
                if token is not None:
                    return token
            if self._fleet is not None:
                await self._fleet.check_cooldown(key)
            return await self._fetch(key, scopes)
        raise AssertionError("unreachable")  # pragma: no cover - AsyncExitStack swallows nothing

    async def _read_store(self, key: str, stale: Token | None) -> Token | None:
        """A usable token from the store that is not the one being replaced."""
        try:
            token = await self.store.get(key)
        except StoreError as exc:
            self._store_failed(exc)
            return None
        if token is None:
            return None
        if stale is not None and token.access_token == stale.access_token:
            return None
        if self._invalidated.get(key) == token.access_token:
            return None
        usable_until, _ = self._schedule(token, 0.0)
        return token if self._clock() < usable_until else None

    async def _fetch(self, key: str, scopes: Scopes) -> Token:
        self.stats.fetches += 1
        started = time.monotonic()
        span = self._telemetry.span(key) if self._telemetry else contextlib.nullcontext()
        try:
            with span:
                async with asyncio.timeout(self.fetch_timeout):
                    token = await self.source.token(scopes)
        except FetchTimeout:
            raise
        except TimeoutError:
            raise FetchTimeout(f"no token within fetch_timeout={self.fetch_timeout:g} s") from None
        except (RateLimited, ServerError, InvalidClient) as exc:
            if self._fleet is not None:
                delay = self._backoff.delay(key, exc)  # the same delay here and for the fleet
                await self._fleet.record_cooldown(key, delay, exc)
                self._emit("cooldown_entered", key, error=_describe(exc), retry_in=delay)
            raise
        latency = time.monotonic() - started
        logger.info(
            "tokenfleet: fetched token %s for %s (scopes %s, lifetime %.0f s, %.0f ms)",
            token.fingerprint,
            self.client_id or key,
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
                await self.store.set(key, token, ttl)
            except StoreError as exc:
                self._store_failed(exc)
        return token

    def _flight_done(self, key: str, task: asyncio.Task[Token]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._backoff.succeeded(key)
            return
        self.stats.fetch_errors += 1
        delay = self._backoff.failed(key, error)
        self._emit("fetch_failed", key, error=_describe(error), retry_in=delay)
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

    def _store_failed(self, exc: StoreError) -> None:
        self.stats.store_errors += 1
        if not self.fail_open:
            raise exc
        now = time.monotonic()
        if now - self._store_warned_at >= _STORE_WARNING_PERIOD:
            self._store_warned_at = now
            self._emit("store_unreachable", "", error=_describe(exc))
            logger.warning(
                "tokenfleet: token store failing, fetching without it (fail_open): %s "
                "(next warning in %.0f s at the earliest)",
                exc,
                _STORE_WARNING_PERIOD,
            )
        else:
            logger.debug("tokenfleet: store error (fail-open): %s", exc)

    # ------------------------------------------------------------------ bookkeeping

    def _schedule(self, token: Token, jitter: float) -> tuple[float, float]:
        return schedule(token, leeway=self.leeway, refresh_ratio=self.refresh_ratio, jitter=jitter)

    def _remember(self, key: str, token: Token) -> None:
        jitter = random.uniform(0.0, self.jitter)  # noqa: S311 - spreading, not secrecy
        usable_until, refresh_at = self._schedule(token, jitter)
        if not self.near_cache:
            return
        if len(self._near) >= self.max_keys and key not in self._near:
            del self._near[next(iter(self._near))]
        self._near[key] = _Entry(token, usable_until, refresh_at)

    def _key_for(self, scopes: str | Iterable[str] | None) -> tuple[str, Scopes]:
        lookup: object = scopes if scopes is None or isinstance(scopes, str) else tuple(scopes)
        known = self._keys.get(lookup)
        if known is not None:
            return known
        normalized = None if scopes is None else normalize_scopes(lookup)  # type: ignore[arg-type]
        if isinstance(self.source, KeyedTokenSource):
            key = self.source.cache_key(normalized)
            if self._namespace:
                key = f"{self._namespace}:{key}"
        else:
            key = cache_key(
                token_url="",
                client_id=self._namespace or "",
                auth_method="",
                credential="",
                scopes=normalized or (),
                audience=None,
                resources=(),
                extra_params={},
            )
        if len(self._keys) >= max(self.max_keys, MAX_KEYS):
            del self._keys[next(iter(self._keys))]
        self._keys[lookup] = (key, normalized)
        return key, normalized

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
            key = self._key_of(token)
        else:
            key = self._default_key
        entry = self._near.get(key)
        if token is None or (entry is not None and entry.token.access_token == token.access_token):
            self._near.pop(key, None)
        if token is None and entry is not None:
            token = entry.token  # compare-and-delete what we hold, and name it to the fleet
        if token is not None:
            bounded_put(self._invalidated, key, token.access_token)
        try:
            await self.store.delete(key, token)
        except StoreError as exc:
            self._store_failed(exc)

    def _drop_invalidated(self, key: str, fingerprint: str) -> None:
        """Another process invalidated a token: stop serving it here too."""
        entry = self._near.get(key)
        if entry is not None and fingerprint in ("*", entry.token.fingerprint):
            del self._near[key]
            bounded_put(self._invalidated, key, entry.token.access_token)

    def _key_of(self, token: Token) -> str:
        """The cache key a token was handed out under (the default key if unknown)."""
        for key, entry in self._near.items():
            if entry.token.access_token == token.access_token:
                return key
        return self._default_key

    async def aclose(self) -> None:
        """Cancel background refreshes, then close the source and store (if owned)."""
        if self._closed:
            return
        self._closed = True
        self._near.clear()
        await self._flights.cancel_all()
        if self._close_store:
            await self.store.aclose()  # also ends the store's invalidation iterators
        if self._listener is not None:
            await cancel_and_wait([self._listener])
        aclose = getattr(self.source, "aclose", None)
        if self._close_source and aclose is not None:
            await aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"TokenManager(source={self.source!r}, store={self.store!r})"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
