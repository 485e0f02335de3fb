"""The invalidation listener leaves no orphan pub/sub read behind when it is cancelled:
an orphan read fails later (the connection closes) with "Task exception was never
retrieved", and holds the connection until then."""

from __future__ import annotations

import asyncio

from tokenfleet import RedisStore


def pending_reads() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "get_message" in repr(task.get_coro())
    ]


async def test_a_cancelled_listener_leaves_no_pending_pubsub_read(redis_url: str) -> None:
    store = RedisStore(redis_url)

    async def listen() -> None:
        async for _ in store.invalidations():
            pass

    listener = asyncio.create_task(listen())
    for _ in range(50):  # subscribed, a read pending
        await asyncio.sleep(0.02)
        if pending_reads():
            break
    assert pending_reads(), "the listener never started reading"
    listener.cancel()  # the manager closes its listener mid-read
    await asyncio.gather(listener, return_exceptions=True)
    await asyncio.sleep(0)
    assert not pending_reads()
    await store.aclose()
