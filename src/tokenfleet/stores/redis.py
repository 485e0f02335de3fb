"""``RedisStore``: tokens, the fleet lock, cooldowns and invalidations in Redis.

Keys, all with the ``{key}`` hash tag so that they live in one Redis Cluster slot::

    <prefix>:{<key>}            the token (SET ... PX ttl: Redis drops it by itself)
    <prefix>:{<key>}:lock       the single-flight lock (SET NX PX, random owner)
    <prefix>:{<key>}:cooldown   the fleet-wide cooldown (SET PX until-now)
    <prefix>:invalidate         the pub/sub channel of invalidations

Compare-and-delete does not compare whole values (with encryption at rest, two encodings
of one token differ): the stored envelope starts with the token's
fingerprint (see :mod:`._codec`), and a Lua script compares that fixed-length header.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from .._exceptions import ConfigurationError, StoreError
from .._models import Token
from .._util.tasks import cancel_and_wait
from . import _codec

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
# KEYS[1] lock key; ARGV[1] our owner value (as redis-py's asyncio/lock.py releases).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
# KEYS[1] lock key; ARGV[1] our owner value; ARGV[2] the new TTL in ms.
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RECONNECT_MIN, _RECONNECT_MAX = 0.1, 5.0  # pub/sub reconnect backoff (seconds)


def redact_url(url: str) -> str:
    """``url`` with its password (userinfo or ``?password=``) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rpartition("@")[2]
        netloc = f"{user}:***@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class RedisStore:
    """Tokens in Redis, shared by every process and host that uses the same Redis.

    Args:
        redis: a URL (``redis://``, ``rediss://``, ``unix://``, with redis-py's query
            options), or a ``redis.asyncio.Redis`` / ``RedisCluster`` client. A client
            built from a URL is owned and closed by :meth:`aclose`; a client passed in
            is not.
        prefix: namespace of every key and of the invalidation channel.
        lock_poll_initial: first backoff (seconds) of a lock waiter's polling.
        lock_poll_max: longest backoff of that polling, so a waiter learns within
            ``lock_poll_max`` that the lock is free.
        lock_lease: TTL (seconds) of a held lock, renewed every third of it while the
            holder lives.
        op_timeout: upper bound (seconds) of any one Redis call, also for clients
            passed in whose own socket timeouts are unknown.
        cipher: encryption at rest, e.g. :class:`~tokenfleet.AesGcmCipher`; default none.

    The lock is a lease: ``SET NX PX lock_lease`` with a random owner, extended every
    ``lock_lease / 3`` by the holder (a compare-and-expire script), released by a
    compare-and-delete script. A live holder keeps it however long its fetch takes (the
    ``TokenManager`` bounds that by its fetch timeout); a holder killed with SIGKILL
    stops renewing, so its lock vanishes within ``lock_lease`` and one waiter takes over
    while the others keep waiting for the token it fetches.
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
        if isinstance(redis, str):
            self._where = redact_url(redis)
            self._client: AnyRedis = _client_from_url(redis, self._where)
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
        if _decodes_responses(self._client):
            raise ConfigurationError(
                "RedisStore stores binary values: give it a client made without "
                "decode_responses=True (or a URL, and it makes its own)"
            )
        self.prefix = prefix
        self._poll = (lock_poll_initial, lock_poll_max)
        self.lock_lease = lock_lease
        self._op_timeout = op_timeout
        self._codec = _codec.Codec(f"RedisStore({self._where})", cipher=cipher)
        self._compare_and_delete = self._client.register_script(_COMPARE_AND_DELETE)
        self._release = self._client.register_script(_RELEASE)
        self._extend = self._client.register_script(_EXTEND)
        self._closed = asyncio.Event()

    # ------------------------------------------------------------------ keys and errors

    def _key(self, key: str, suffix: str = "") -> str:
        return f"{self.prefix}:{{{key}}}{suffix}"

    @property
    def channel(self) -> str:
        """The pub/sub channel of invalidations."""
        return f"{self.prefix}:invalidate"

    async def _run(self, op: str, call: Awaitable[T]) -> T:
        """Await one Redis call, bounded by ``op_timeout``; failures become ``StoreError``."""
        try:
            async with asyncio.timeout(self._op_timeout):
                return await call
        except (RedisError, OSError, TimeoutError, ValueError) as exc:
            text = str(exc) or f"no answer within {self._op_timeout:g} s"
            detail = text.replace(self._password, "***") if self._password else text
            raise StoreError(
                f"Redis store {self._where}: {op} failed ({type(exc).__name__}: {detail})"
            ) from exc

    @property
    def _password(self) -> str | None:
        kwargs = getattr(getattr(self._client, "connection_pool", None), "connection_kwargs", {})
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

    @asynccontextmanager
    async def lock(self, key: str, timeout: float) -> AsyncIterator[bool]:
        """``SET lock owner NX PX``, polled with backoff; yields whether it was acquired.

        Raises:
            StoreError: Redis cannot be reached (the caller fetches without waiting).
        """
        lock_key, owner = self._key(key, ":lock"), secrets.token_hex(16)
        acquired = await self._acquire(lock_key, owner, timeout)
        renewer = asyncio.create_task(self._renew(lock_key, owner)) if acquired else None
        try:
            yield acquired
        finally:
            if renewer is not None:
                await cancel_and_wait([renewer])
            if acquired:
                await self._unlock(lock_key, owner)

    async def _renew(self, lock_key: str, owner: str) -> None:
        """Keep extending our lease while we hold the lock (a Redisson-style watchdog)."""
        while True:
            await asyncio.sleep(self.lock_lease / 3)
            try:
                async with asyncio.timeout(self.lock_lease / 3):
                    call = self._extend(keys=[lock_key], args=[owner, _ms(self.lock_lease)])
                    if not await self._run("lock renew", call):
                        logger.debug("tokenfleet: lost the lock %s before renewing it", lock_key)
                        return
            except (StoreError, TimeoutError) as exc:
                # Keep trying: one slow or failed renewal must not let a live lease lapse.
                logger.debug("tokenfleet: lock renewal failed (%s); retrying", exc)

    async def _acquire(self, lock_key: str, owner: str, timeout: float) -> bool:
        ttl_ms = _ms(self.lock_lease)
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = self._poll[0]
        try:
            while True:
                call = self._client.set(lock_key, owner, nx=True, px=ttl_ms)
                if await self._run("lock SET NX", call):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, self._poll[1])
        except asyncio.CancelledError:
            # Our SET may have reached Redis before the cancellation: release it now
            # rather than leave the fleet waiting for its TTL.
            await asyncio.shield(self._unlock(lock_key, owner))
            raise

    async def _unlock(self, lock_key: str, owner: str) -> None:
        try:
            await self._run("lock release", self._release(keys=[lock_key], args=[owner]))
        except StoreError as exc:
            # Not worth an error: the lock expires by its TTL.
            logger.debug("tokenfleet: %s (the lock expires by itself)", exc)

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
                await _sleep_unless(self._closed, delay)
                delay = min(delay * 2, _RECONNECT_MAX)

    async def _subscribe(self) -> AsyncIterator[tuple[str, str]]:
        pubsub = self._client.pubsub()
        try:
            async with asyncio.timeout(self._op_timeout):
                await pubsub.subscribe(self.channel)
            while not self._closed.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                item = _invalidation(message)
                if item is not None:
                    yield item
        finally:
            await _quietly(pubsub.aclose())  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Stop the invalidation iterators; close the client if this store created it."""
        self._closed.set()
        if self._owns_client:
            await _quietly(self._client.aclose())

    def __repr__(self) -> str:
        return f"RedisStore({self._where}, prefix={self.prefix!r})"


def _decodes_responses(client: AnyRedis) -> bool:
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or getattr(client, "connection_kwargs", {})
    return bool(kwargs.get("decode_responses"))


def _client_from_url(url: str, where: str) -> aioredis.Redis:
    """A client for ``url`` that fails fast when Redis is down (query options override)."""
    try:
        return aioredis.from_url(
            url,
            socket_timeout=2.0,
            socket_connect_timeout=1.0,
            # One quick retry heals a pooled connection a Redis restart broke; more
            # would only delay the fail-open fetch while Redis is down.
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
        )
    except (ValueError, RedisError) as exc:
        raise ConfigurationError(f"invalid Redis URL {where}: {exc}") from None


def _as_bytes(data: bytes | str) -> bytes:
    # A client made with decode_responses=True hands back str; our values are binary.
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _invalidation(message: Any) -> tuple[str, str] | None:
    if not isinstance(message, dict) or message.get("type") != "message":
        return None
    try:
        key, fp = msgspec.msgpack.decode(message["data"], type=tuple[str, str])
    except (msgspec.DecodeError, TypeError, UnicodeDecodeError):
        return None
    return key, fp


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except (RedisError, OSError) as exc:
        logger.debug("tokenfleet: ignored while closing a Redis connection: %s", exc)
