"""The fleet lock of ``RedisStore``: a renewed lease, and waiters that watch for the token.

Acquire: ``SET lock owner NX PX lease`` (in a script that answers, when the lock is
held, how much of the holder's lease is left). A waiter that finds the lock held does
not queue for it: it sleeps until the holder releases the lock or until the holder's
lease could have run out, then takes the token and only if there is none tries
``SET NX`` again. The release publishes, on the store's *released* channel, the key and
the token stored under it (read by the release script itself, so it is what a ``GET``
would return); the store's pub/sub connection hands both to the key's waiters. So when
the token lands, every waiter is served by the message it receives, at once, instead
of one waiter per poll period (a convoy) or one more ``GET`` each (which, at 1,000
members, made the wake-up cost twice a plain store read). A waiter woken by its timer,
or by a release with no token stored, reads the token with a ``GET``.

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

# KEYS[1] lock key, KEYS[2] token key (one slot: both carry the key's hash tag); ARGV[1]
# our owner value (as redis-py's asyncio/lock.py releases); ARGV[2] the released channel;
# ARGV[3] the msgpack key. The message is the msgpack array [key, stored token] (the
# token as a bin 32, built by hand: no Lua library needed), or the key alone when no
# token is stored.
RELEASE = """
local released = 0
if redis.call('get', KEYS[1]) == ARGV[1] then
    released = redis.call('del', KEYS[1])
end
local value = redis.call('get', KEYS[2])
if value then
    local n = #value
    local size = string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
        math.floor(n / 256) % 256, n % 256)
    redis.call('publish', ARGV[2], '\\146' .. ARGV[3] .. '\\198' .. size .. value)
else
    redis.call('publish', ARGV[2], ARGV[3])
end
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


class Wake:
    """One waiter's wake-up: set by a release, with the token stored at that moment."""

    __slots__ = ("event", "stored")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.stored: bytes | None = None  # the stored token the last release carried

    def clear(self) -> None:
        self.event.clear()
        self.stored = None


class Waiters:
    """Lock waiters of one store, by key, and whether wake-ups can reach them."""

    def __init__(self) -> None:
        self._wakes: dict[str, set[Wake]] = {}
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
    def register(self, key: str) -> Iterator[Wake]:
        """A wake-up set whenever the lock of ``key`` is released (by any process)."""
        wake = Wake()
        self._wakes.setdefault(key, set()).add(wake)
        try:
            yield wake
        finally:
            wakes = self._wakes.get(key)
            if wakes is not None:
                wakes.discard(wake)
                if not wakes:
                    del self._wakes[key]

    def wake(self, key: str, stored: bytes | None) -> None:
        """The lock of ``key`` was released, with ``stored`` in the store: wake its waiters."""
        for wake in self._wakes.get(key, ()):
            wake.stored = stored
            wake.event.set()


class Lease:
    """Acquire, renew and release the lock of one key.

    Args:
        client: the redis client; ``run`` bounds a call and maps its errors.
        names: for a key, its lock key, token key, the released channel and the key as
            the released message starts it (msgpack).
        lease: TTL (seconds) of a held lock.
        poll: (first, longest) poll timer of a waiter whose store is not subscribed.
        waiters: the store's waiters, woken by its pub/sub connection.
    """

    def __init__(
        self,
        client: Any,
        run: Run,
        *,
        names: Callable[[str], tuple[str, str, str, bytes]],
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
        read: Callable[[bytes | None], Awaitable[Token | None]] | None,
    ) -> float | Token | None:
        """Wait for the lock of ``key`` (bounded by ``timeout``), or for its token.

        ``read(stored)`` gives the token a waiter may take: from ``stored`` (what a
        release carried), or from the store when that is ``None``.

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
                    stored = woken.stored
                    woken.clear()  # a release from now on wakes us
                    if read is not None and delay is not None:
                        token = await read(stored)
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
                            await woken.event.wait()
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
                if expiry - time.monotonic() > _RETRY_PAUSE:
                    await asyncio.sleep(_RETRY_PAUSE)
                continue  # past the expiry: say so now, before another owner can act
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
        lock_key, token_key, channel, message = self._names(key)
        call = self._release(keys=[lock_key, token_key], args=[owner, channel, message])
        try:
            await self._run("lock release", call)
        except StoreError as exc:
            # Not worth an error: the lock expires by its TTL.
            logger.debug("tokenfleet: %s (the lock expires by itself)", exc)


def released(message: Any, channel: str) -> tuple[str, bytes | None] | None:
    """``(key, stored token)`` of a pub/sub ``message`` on ``channel`` (see ``RELEASE``);
    the token is ``None`` when none was stored (or an older version sent the key alone)."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return None
    name = message.get("channel")
    if (name.decode("utf-8", "replace") if isinstance(name, bytes) else name) != channel:
        return None
    data = message["data"]
    with_token = _codec.load(data, tuple[str, bytes])
    if with_token is not None:
        return with_token
    key = _codec.load(data, str)
    return None if key is None else (key, None)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
