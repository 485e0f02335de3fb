"""``RedisStore``: tokens, the fleet lock, cooldowns and invalidations in Redis.

Keys, all with the ``{key}`` hash tag so that one key's entries live in one Redis Cluster
slot (a cache key that already starts with ``<prefix>:`` is not given the prefix twice:
``tokenfleet:v1:app:3f2a`` is stored as ``tokenfleet:{v1:app:3f2a}``)::

    <prefix>:{<key>}            the token (SET ... PX ttl: Redis drops it by itself)
    <prefix>:{<key>}:lock       the single-flight lock (SET NX PX, random owner)
    <prefix>:{<key>}:cooldown   the fleet-wide cooldown (SET PX until-now)
    <prefix>:invalidate         the pub/sub channel of invalidations
    <prefix>:released           the pub/sub channel that wakes lock waiters (see _redis_lock)

On a Redis Cluster the invalidation channel is classic pub/sub, not sharded
(``SSUBSCRIBE``): a classic ``PUBLISH`` reaches every node over the cluster bus, so a
subscriber on any live node hears every invalidation, before the client has loaded the
slot map and across failovers, without re-subscribing when slots move. Invalidations are
rare (one per revoked token), so the bus's copy per node costs little; sharded pub/sub
would put the one channel on one shard anyway.

Compare-and-delete does not compare whole values (with encryption at rest, two encodings
of one token differ): the stored envelope starts with the token's
fingerprint (see :mod:`._codec`), and a Lua script compares that fixed-length header.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NoReturn, TypeVar

import msgspec

try:
    import redis.asyncio as aioredis
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "RedisStore needs redis-py, which is an optional extra: pip install tokenfleet[redis]"
    ) from exc
from redis.exceptions import AskError, MovedError, RedisError, ResponseError

from .._exceptions import ConfigurationError, StoreError
from .._models import Token
from .._util.redact import printable, redact, redact_url
from .._util.tasks import cancel_and_wait
from . import _codec
from ._redis_clients import (
    CLUSTER_NODE,
    check_client,
    client_from_url,
    connection_kwargs,
    is_plain,
    wrong_mode,
)
from ._redis_lock import Lease, Waiters, released
from ._redis_pubsub import invalidation, messages, open_pubsub, sleep_unless

__all__ = ["RedisStore"]

logger = logging.getLogger("tokenfleet")

T = TypeVar("T")
AnyRedis = aioredis.Redis | aioredis.RedisCluster

# KEYS[1] token key; ARGV[1] the envelope header of the token to delete.
_COMPARE_AND_DELETE = """
local value = redis.call('get', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
_RECONNECT_MIN, _RECONNECT_MAX = 0.1, 5.0  # pub/sub reconnect backoff (seconds)


class RedisStore:
    """Tokens in Redis, shared by every process and host that uses the same Redis.

    Args:
        redis: a URL (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``,
            ``redis+cluster://``: see :mod:`._redis_urls` and docs/stores.md), or a
            ``redis.asyncio.Redis`` (also one from ``Sentinel.master_for``) or
            ``RedisCluster`` client. A client built from a URL is owned and closed by
            :meth:`aclose`; a client passed in is not.
        prefix: namespace of every key and of the invalidation channel.
        lock_poll_initial: first backoff (seconds) of a lock waiter's polling while the
            store's pub/sub connection is not up (once it is, a release wakes waiters).
        lock_poll_max: longest backoff of that polling (each pause is jittered).
        lock_lease: TTL (seconds) of a held lock, renewed every third of it while the
            holder lives.
        op_timeout: upper bound (seconds) of any one Redis call, also for clients
            passed in whose own socket timeouts are unknown.
        cipher: encryption at rest, e.g. :class:`~tokenfleet.AesGcmCipher`; default none.

    The lock is a lease: ``SET NX PX lock_lease`` with a random owner, extended every
    ``lock_lease / 3`` after the last successful renewal by the holder (a
    compare-and-expire script, retried at once if it fails), released by a
    compare-and-delete script that also wakes the waiters. A live holder keeps it
    however long its fetch takes (the ``TokenManager`` bounds that by its fetch timeout);
    a holder killed with SIGKILL stops renewing, so its lock vanishes within
    ``lock_lease`` and one waiter takes over while the others keep waiting for the token
    it fetches. Waiters read the token when woken (see :meth:`lock_or_token`).
    """

    def __init__(
        self,
        redis: str | AnyRedis,
        *,
        prefix: str = "tokenfleet",
        lock_poll_initial: float = 0.005,
        lock_poll_max: float = 0.05,
        lock_lease: float = 2.0,
        op_timeout: float = 3.0,
        cipher: _codec.Cipher | None = None,
    ) -> None:
        if (
            not prefix
            or not 0 < lock_poll_initial <= lock_poll_max
            or op_timeout <= 0
            or lock_lease <= 0
        ):
            raise ConfigurationError(
                "RedisStore needs a non-empty prefix, 0 < lock_poll_initial <= lock_poll_max "
                "and op_timeout > 0"
            )
        self._sentinels: list[aioredis.Redis] = []
        if isinstance(redis, str):
            self._where = redact_url(redis)
            self._client, self._sentinels = client_from_url(redis, self._where)
            self._owns_client = True
        elif isinstance(redis, (aioredis.Redis, aioredis.RedisCluster)):
            self._where = f"<{type(redis).__name__} client>"
            self._client = redis
            self._owns_client = False
        else:
            raise ConfigurationError(
                "RedisStore expects a redis URL or a redis.asyncio.Redis/RedisCluster client, "
                f"got {type(redis).__name__}"
            )
        check_client(self._client)
        self.prefix = prefix
        self.lock_lease = lock_lease
        self._op_timeout = op_timeout
        self._codec = _codec.Codec(f"RedisStore({self._where})", cipher=cipher)
        self._compare_and_delete = self._client.register_script(_COMPARE_AND_DELETE)
        self._waiters = Waiters()
        self._lease = Lease(
            self._client,
            self._run,
            names=self._lock_names,
            lease=lock_lease,
            poll=(lock_poll_initial, lock_poll_max),
            waiters=self._waiters,
        )
        self._closed = asyncio.Event()
        # A plain client's server is asked once what it is (a cluster node or a sentinel
        # given a redis:// URL would otherwise fail open, silently, on every call).
        self._mode_checked = not is_plain(self._client)
        self._wrong_mode: str | None = None

    # ------------------------------------------------------------------ keys and errors

    def _key(self, key: str, suffix: str = "") -> str:
        body = key.removeprefix(f"{self.prefix}:")
        return f"{self.prefix}:{{{body}}}{suffix}"

    @property
    def channel(self) -> str:
        """The pub/sub channel of invalidations."""
        return f"{self.prefix}:invalidate"

    @property
    def released_channel(self) -> str:
        """The pub/sub channel on which a lock release wakes that key's waiters."""
        return f"{self.prefix}:released"

    def _lock_names(self, key: str) -> tuple[str, str, str, bytes]:
        key_name = msgspec.msgpack.encode(key)
        return self._key(key, ":lock"), self._key(key), self.released_channel, key_name

    async def _run(self, op: str, call: Awaitable[T]) -> T:
        """Await one Redis call, bounded by ``op_timeout``; failures become ``StoreError``.

        Raises:
            ConfigurationError: the server is a cluster node or a sentinel, which this
                URL form cannot use (the message names the one to use).
        """
        try:
            async with asyncio.timeout(self._op_timeout):
                if not self._mode_checked:
                    await self._check_mode()
                if self._wrong_mode is not None:
                    raise ConfigurationError(self._wrong_mode)
                return await call
        except ConfigurationError:
            raise  # a ValueError too, but not a store failure to fail open on
        except ResponseError as exc:
            if isinstance(exc, (MovedError, AskError)) and is_plain(self._client):
                self._wrong_mode = CLUSTER_NODE.format(where=self._where)
                raise ConfigurationError(self._wrong_mode) from None
            raise self._store_error(op, exc) from exc
        except (RedisError, OSError, TimeoutError, ValueError) as exc:
            raise self._store_error(op, exc) from exc
        finally:
            if inspect.iscoroutine(call):
                call.close()  # not awaited when the mode check refused it: no warning

    async def _check_mode(self) -> None:
        self._wrong_mode = await wrong_mode(self._client, self._where)
        self._mode_checked = True

    def _store_error(self, op: str, exc: BaseException) -> StoreError:
        text = str(exc) or f"no answer within {self._op_timeout:g} s"
        detail = printable(redact(text, (self._password or "",), mask="***"), 200)
        return StoreError(
            f"Redis store {self._where}: {op} failed ({type(exc).__name__}: {detail})"
        )

    @property
    def _password(self) -> str | None:
        kwargs = connection_kwargs(self._client)
        password = kwargs.get("password")
        return password if isinstance(password, str) and password else None

    # ------------------------------------------------------------------ tokens

    @property
    def holds_dpop_keys(self) -> bool:
        """Whether DPoP-bound tokens may be stored: only sealed, so only with a cipher."""
        return self._codec.cipher is not None

    async def get(self, key: str) -> Token | None:
        """The token under ``key``, or ``None`` (also for an unreadable entry)."""
        data = await self._run("GET", self._client.get(self._key(key)))
        if data is None:
            return None
        return self._codec.decode(_as_bytes(data), key)

    async def set(self, key: str, token: Token, ttl: float) -> None:
        """``SET key value PX ttl``: Redis drops the entry after ``ttl`` seconds."""
        if ttl <= 0:
            await self._run("DEL", self._client.delete(self._key(key)))
            return
        value = self._codec.encode(token, time.time() + ttl, key)
        await self._run("SET", self._client.set(self._key(key), value, px=_ms(ttl)))

    async def delete(self, key: str, token: Token | None = None) -> bool:
        """Delete ``key`` (only if it holds ``token``), and tell every process to drop it."""
        if token is None:
            deleted = await self._run("DEL", self._client.delete(self._key(key)))
        else:
            header = _codec.header(token.fingerprint)
            call = self._compare_and_delete(keys=[self._key(key)], args=[header])
            deleted = await self._run("compare-and-delete", call)
        fp = "*" if token is None else token.fingerprint
        message = msgspec.msgpack.encode((key, fp))
        await self._run("PUBLISH", self._client.publish(self.channel, message))
        return bool(deleted)

    # ------------------------------------------------------------------ the fleet lock

    def lock(self, key: str, timeout: float) -> AbstractAsyncContextManager[bool]:
        """``SET lock owner NX PX``, retried when released or polled; yields whether held.

        Raises:
            StoreError: Redis cannot be reached (the caller fetches without waiting).
        """
        return self._locked(key, timeout, None)  # type: ignore[return-value]

    def lock_or_token(
        self, key: str, timeout: float, accept: Callable[[Token], bool]
    ) -> AbstractAsyncContextManager[bool | Token]:
        """Like :meth:`lock`, but a waiter woken by a release (or its poll timer) first
        reads the token, and ends the wait with it if ``accept(token)``.

        Raises:
            StoreError: Redis cannot be reached (the caller fetches without waiting).
        """
        return self._locked(key, timeout, accept)

    @asynccontextmanager
    async def _locked(
        self, key: str, timeout: float, accept: Callable[[Token], bool] | None
    ) -> AsyncIterator[bool | Token]:
        async def read(stored: bytes | None) -> Token | None:
            """The token a waiter may take: the one a release carried, or the store's."""
            if stored is None:
                token = await self.get(key)
            else:
                token = self._codec.decode(stored, key)
            return token if token is not None and accept is not None and accept(token) else None

        owner = secrets.token_hex(16)
        outcome = await self._lease.acquire(key, owner, timeout, read if accept else None)
        if not isinstance(outcome, float):
            yield False if outcome is None else outcome
            return
        renewer = asyncio.create_task(self._lease.keep(self._key(key, ":lock"), owner, outcome))
        try:
            yield True
        finally:
            await cancel_and_wait([renewer])
            await self._lease.release(key, owner)

    # ------------------------------------------------------------------ cooldowns

    async def get_cooldown(self, key: str) -> tuple[float, str] | None:
        """``(until, reason)`` of the cooldown for ``key``, or ``None``."""
        data = await self._run("GET", self._client.get(self._key(key, ":cooldown")))
        entry = None if data is None else _codec.decode_cooldown(_as_bytes(data))
        if entry is None or entry.until <= time.time():
            return None
        return entry.until, entry.reason

    async def set_cooldown(self, key: str, until: float, reason: str) -> None:
        """Record a cooldown for ``key`` that Redis drops at ``until`` (Unix seconds)."""
        ttl = until - time.time()
        if ttl <= 0:
            return
        value = _codec.encode_cooldown(until, reason)
        await self._run("SET", self._client.set(self._key(key, ":cooldown"), value, px=_ms(ttl)))

    # ------------------------------------------------------------------ invalidations

    async def invalidations(self) -> AsyncIterator[tuple[str, str]]:
        """``(key, fingerprint)`` of every invalidation published on :attr:`channel`.

        Reconnects after an outage with a backoff from 0.1 s to 5 s; ends when the store
        is closed. Messages published while disconnected are lost.
        """
        delay = _RECONNECT_MIN
        while not self._closed.is_set():
            try:
                async for item in self._subscribe():
                    delay = _RECONNECT_MIN
                    yield item
            except (RedisError, OSError, TimeoutError) as exc:
                logger.debug("tokenfleet: %s: invalidation channel lost: %s", self._where, exc)
            if not self._closed.is_set():
                await sleep_unless(self._closed, delay)
                delay = min(delay * 2, _RECONNECT_MAX)

    async def _subscribe(self) -> AsyncIterator[tuple[str, str]]:
        pubsub = await open_pubsub(self._client, self._op_timeout)
        try:
            async with asyncio.timeout(self._op_timeout):
                await pubsub.subscribe(self.channel, self.released_channel)
            with self._waiters.subscription():
                async for message in messages(pubsub, self._closed):
                    release = released(message, self.released_channel)
                    if release is not None:
                        self._waiters.wake(*release)
                        continue
                    item = invalidation(message)
                    if item is not None:
                        yield item
        finally:
            await _quietly(pubsub.aclose())

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Stop the invalidation iterators; close the client if this store created it."""
        self._closed.set()
        if self._owns_client:
            await _quietly(self._client.aclose())
            for sentinel in self._sentinels:  # a Sentinel's own connections
                await _quietly(sentinel.aclose())

    def __repr__(self) -> str:
        return f"RedisStore({self._where}, prefix={self.prefix!r})"

    def __reduce__(self) -> NoReturn:
        raise ConfigurationError(
            "a tokenfleet RedisStore cannot be pickled (its client holds the Redis "
            "password): build it in each process, e.g. with store_from_url()"
        )


def _as_bytes(data: bytes | str) -> bytes:
    # A client made with decode_responses=True hands back str; our values are binary.
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except (RedisError, OSError) as exc:
        logger.debug("tokenfleet: ignored while closing a Redis connection: %s", exc)


RedisStore.__module__ = "tokenfleet"  # its public name (tokenfleet.RedisStore), as httpx does
