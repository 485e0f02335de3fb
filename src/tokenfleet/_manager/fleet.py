"""Fleet-wide signals through a shared store: cooldowns and invalidations.

A cooldown one process records (the token endpoint answered 429, kept failing, or refused
the credentials) makes every process back off instead of discovering the outage by
itself; an invalidation one process publishes makes every process drop that token from
its near cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .._exceptions import FleetCooldown, StoreError
from .._util.redact import printable
from ..stores import FleetStore

__all__ = ["FleetSignals"]

logger = logging.getLogger("tokenfleet")


class FleetSignals:
    """Cooldowns and invalidations of one ``TokenManager`` over a ``FleetStore``."""

    def __init__(
        self,
        store: FleetStore,
        clock: Callable[[], float],
        store_failed: Callable[[StoreError], None],
        max_delay: float,
    ) -> None:
        self._store = store
        self._clock = clock
        self._store_failed = store_failed
        self._max_delay = max_delay

    async def check_cooldown(self, key: str) -> None:
        """Raise ``FleetCooldown`` while a cooldown recorded for ``key`` lasts."""
        try:
            cooldown = await self._store.get_cooldown(key)
        except StoreError as exc:
            self._store_failed(exc)
            return
        now = self._clock()
        if cooldown is None or cooldown[0] <= now:
            return
        # A store is not trusted: an entry planted with a far-future end must not silence
        # the fleet beyond max_backoff, and its text must not forge log lines.
        until = min(cooldown[0], now + self._max_delay)
        reason = printable(str(cooldown[1]), 120)
        raise FleetCooldown(
            f"the fleet is backing off this token endpoint for {until - self._clock():.1f} s "
            f"more (a process saw {reason})",
            until=until,
            reason=reason,
        )

    async def record_cooldown(self, key: str, delay: float, error: BaseException) -> None:
        """Ask every process to leave ``key`` alone for ``delay`` seconds."""
        status: object = getattr(error, "status", None)
        reason = f"{type(error).__name__} (HTTP {status})" if status else type(error).__name__
        try:
            await self._store.set_cooldown(key, self._clock() + delay, reason)
        except StoreError as exc:
            self._store_failed(exc)

    async def listen(self, drop: Callable[[str, str], None], closed: Callable[[], bool]) -> None:
        """Call ``drop(key, fingerprint)`` for every invalidation, until ``closed()``."""
        while not closed():
            try:
                async for key, fingerprint in self._store.invalidations():
                    drop(key, fingerprint)
                return
            except Exception as exc:  # noqa: BLE001 - a listener must outlive bad messages
                logger.warning("tokenfleet: invalidation listener failed (%r); restarting", exc)
                await asyncio.sleep(1.0)
