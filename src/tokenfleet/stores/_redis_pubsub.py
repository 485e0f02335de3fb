"""The pub/sub side of ``RedisStore``: its connection, its reads, its messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from .._util.tasks import cancel_and_wait
from . import _codec

# An idle pub/sub connection waits this long per read: a short read timeout costs every
# idle process a wake-up per read (1,000 members at 0.2 s burned a quarter of a core).
_IDLE_READ = 30.0


async def open_pubsub(client: Any, op_timeout: float) -> Any:
    """A pub/sub connection; on a cluster, to any node (classic pub/sub reaches all)."""
    if not isinstance(client, aioredis.RedisCluster):
        return client.pubsub()
    # redis-py's cluster pub/sub picks its node from the slot map, which is empty
    # (KeyError) until the client has run a command: load it, then name a node.
    async with asyncio.timeout(op_timeout):
        await client.initialize()
    return client.pubsub(node=client.get_random_node())


async def messages(pubsub: Any, closed_event: asyncio.Event) -> AsyncIterator[Any]:
    """Messages as they come; an idle connection costs one wake-up per ``_IDLE_READ``.

    Each read races ``closed_event``, so closing the store ends the iteration at once.
    """
    closed = asyncio.ensure_future(closed_event.wait())
    read: asyncio.Task[Any] | None = None
    try:
        while True:
            read = asyncio.create_task(
                pubsub.get_message(ignore_subscribe_messages=True, timeout=_IDLE_READ)
            )
            await asyncio.wait((read, closed), return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                await cancel_and_wait([read])
                return
            message = read.result()
            if message is not None:
                yield message
    finally:
        closed.cancel()
        # The consumer may stop iterating (or be cancelled) while a read is pending:
        # cancel it, or it would fail later with nobody to hear it.
        if read is not None and not read.done():
            read.cancel()


def invalidation(message: Any) -> tuple[str, str] | None:
    """``(key, fingerprint)`` of an invalidation message; ``None`` for anything else."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return None
    return _codec.load(message["data"], tuple[str, str])


async def sleep_unless(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``event`` is set meanwhile."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
