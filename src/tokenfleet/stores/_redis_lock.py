"""The fleet lock of ``RedisStore``: a renewed lease, and waiters that watch for the token.

Acquire: ``SET lock owner NX PX lease`` (in a script that answers, when the lock is
held, how much of the holder's lease is left). A waiter that finds the lock held does
not queue for it: it sleeps until the holder releases the lock (the release publishes
the key on the store's *released* channel, which the store's pub/sub connection turns
into a wake-up) or until the holder's lease could have run out, then reads the token
(``GET``) and only if none is there tries ``SET NX`` again. So when the token lands,
every waiter is served by one ``GET`` each, at once, instead of one waiter per poll
period (a convoy).

The timer covers a lost notification and a holder killed before releasing (its lease
runs out). While the store's pub/sub connection is not up yet, nothing wakes a waiter:
it polls with a jittered backoff from ``poll_initial`` to ``poll_max`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from .._exceptions import StoreError
from .._models import Token
from . import _codec

logger = logging.getLogger("tokenfleet")

Run = Callable[[str, Awaitable[Any]], Awaitable[Any]]

# KEYS[1] lock key; ARGV[1] our owner value (as redis-py's asyncio/lock.py releases);
# ARGV[2] the released channel, ARGV[3] the message that wakes the key's waiters.
RELEASE = """
local released = 0
if redis.call('get', KEYS[1]) == ARGV[1] then
    released = redis.call('del', KEYS[1])
end
redis.call('publish', ARGV[2], ARGV[3])
return released
"""
# KEYS[1] lock key; ARGV[1] our owner value; ARGV[2] the lease in ms. Returns ACQUIRED,
# or the lease left to the holder (ms), so that a waiter knows when it could run out.
ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return -3
end
return redis.call('pttl', KEYS[1])
"""
ACQUIRED = -3
# KEYS[1] lock key; ARGV[1] our owner value; ARGV[2] the new TTL in ms.
EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_SUBSCRIBED_POLL = (0.05, 0.25)  # poll timer (first, longest) while wake-ups arrive
_RETRY_PAUSE = 0.01  # between two renewal attempts, so a refusing server is not spun on


class Waiters:
    """Lock waiters of one store, by key, and whether wake-ups can reach them."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}
        self._subscriptions = 0

    @property
    def subscribed(self) -> bool:
        """Whether a pub/sub connection of this store receives release notifications."""
        return self._subscriptions > 0

    @contextlib.contextmanager
    def subscription(self) -> Iterator[None]:
        """Mark a pub/sub connection as up while the ``with`` block runs."""
        self._subscriptions += 1
        try:
            yield
        finally:
            self._subscriptions -= 1

    @contextlib.contextmanager
    def register(self, key: str) -> Iterator[asyncio.Event]:
        """An event set whenever the lock of ``key`` is released (by any process)."""
        event = asyncio.Event()
        self._events.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            events = self._events.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[key]

    def wake(self, key: str) -> None:
        """The lock of ``key`` was released: wake its waiters."""
        for event in self._events.get(key, ()):
            event.set()


class Lease:
    """Acquire, renew and release the lock of one key.

    Args:
        client: the redis client; ``run`` bounds a call and maps its errors.
        names: for a key, its lock key, the released channel and the message on it.
        lease: TTL (seconds) of a held lock.
        poll: (first, longest) poll timer of a waiter whose store is not subscribed.
        waiters: the store's waiters, woken by its pub/sub connection.
    """

    def __init__(
        self,
        client: Any,
        run: Run,
        *,
        names: Callable[[str], tuple[str, str, bytes]],
        lease: float,
        poll: tuple[float, float],
        waiters: Waiters,
    ) -> None:
        self._client, self._run, self._names = client, run, names
        self.lease, self._poll, self.waiters = lease, poll, waiters
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._extend = client.register_script(EXTEND)

    async def acquire(
        self,
        key: str,
        owner: str,
        timeout: float,
        read: Callable[[], Awaitable[Token | None]] | None,
    ) -> float | Token | None:
        """Wait for the lock of ``key`` (bounded by ``timeout``), or for its token.

        Returns the monotonic time at which the winning ``SET NX`` was sent (the lease
        runs from then), the token ``read`` found while waiting, or ``None`` when the
        lock was still held by someone else after ``timeout``.
        """
        lock_key = self._names(key)[0]
        deadline = time.monotonic() + max(timeout, 0.0)
        delay: float | None = None
        with self.waiters.register(key) as woken:
            try:
                while True:
                    woken.clear()  # a release from now on wakes us
                    if read is not None and delay is not None:
                        token = await read()
                        if token is not None:
                            return token
                    sent = time.monotonic()
                    call = self._acquire(keys=[lock_key], args=[owner, _ms(self.lease)])
                    left = await self._run("lock SET NX", call)
                    if left == ACQUIRED:
                        return sent
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    delay = self._next_delay(delay)
                    pause = self._pause(delay, left)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(pause, remaining)):
                            await woken.wait()
            except asyncio.CancelledError:
                # Our SET may have reached Redis before the cancellation: release it now
                # rather than leave the fleet waiting for its TTL.
                await asyncio.shield(self.release(key, owner))
                raise

    def _pause(self, delay: float, left_ms: int) -> float:
        """How long to sleep unless woken: ``delay``, jittered so that waiters that started
        together do not poll together; with wake-ups, until the holder's lease could run
        out (a live holder renews it, a release wakes us): a waiting member then costs
        about one command per lease instead of several per second."""
        jitter = random.uniform(0.5, 1.5)  # noqa: S311 - spreading only
        if self.waiters.subscribed and left_ms > 0:
            return left_ms / 1000 + jitter * _SUBSCRIBED_POLL[0]
        longest = (_SUBSCRIBED_POLL if self.waiters.subscribed else self._poll)[1]
        return min(jitter * delay, longest)

    def _next_delay(self, delay: float | None) -> float:
        first, longest = _SUBSCRIBED_POLL if self.waiters.subscribed else self._poll
        return first if delay is None else min(max(delay * 2, first), longest)

    async def keep(self, lock_key: str, owner: str, since: float) -> None:
        """Renew the lease while we hold the lock (a Redisson-style watchdog).

        Renewals are scheduled a third of the lease after the last *successful* one
        (``since``: when it was sent); a failed or slow attempt is retried at once, each
        bounded by a third of the lease, so one slow renewal cannot let a live lease
        lapse. We give up only when the lease has really run out, and say so.
        """
        while True:
            await asyncio.sleep(max(0.0, since + self.lease / 3 - time.monotonic()))
            renewed = await self._renew_before(lock_key, owner, since + self.lease)
            if renewed is None:
                return
            since = renewed

    async def _renew_before(self, lock_key: str, owner: str, expiry: float) -> float | None:
        """Extend the lease before ``expiry`` (monotonic); when it was sent, or ``None``."""
        while (remaining := expiry - time.monotonic()) > 0:
            sent = time.monotonic()
            try:
                async with asyncio.timeout(min(remaining, self.lease / 3)):
                    call = self._extend(keys=[lock_key], args=[owner, _ms(self.lease)])
                    extended = await self._run("lock renew", call)
            except (StoreError, TimeoutError) as exc:
                logger.debug("tokenfleet: lock renewal failed (%s); retrying at once", exc)
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            if extended:
                return sent
            logger.warning(
                "tokenfleet: the fleet lock %s expired or was taken before we renewed it; "
                "another process may fetch this token too",
                lock_key,
            )
            return None
        logger.warning(
            "tokenfleet: could not renew the fleet lock %s within its %g s lease; "
            "another process may fetch this token too",
            lock_key,
            self.lease,
        )
        return None

    async def release(self, key: str, owner: str) -> None:
        """Delete the lock if it is still ours, and wake every waiter of ``key``."""
        lock_key, channel, message = self._names(key)
        call = self._release(keys=[lock_key], args=[owner, channel, message])
        try:
            await self._run("lock release", call)
        except StoreError as exc:
            # Not worth an error: the lock expires by its TTL.
            logger.debug("tokenfleet: %s (the lock expires by itself)", exc)


def released_key(message: Any, channel: str) -> str | None:
    """The key whose lock a pub/sub ``message`` on ``channel`` says was released."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return None
    name = message.get("channel")
    if (name.decode("utf-8", "replace") if isinstance(name, bytes) else name) != channel:
        return None
    return _codec.load(message["data"], str)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
