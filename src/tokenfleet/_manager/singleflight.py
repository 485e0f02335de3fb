"""Per-key single flight: one task per key, every other caller awaits that task.

As Duende's ``TokenRequestSynchronization`` and Go's ``singleflight``: a
``dict[key, Task]``, the entry popped when the task finishes. The task is not owned by
any caller: callers await it through ``asyncio.shield``, so a caller that is cancelled or
times out leaves the fetch running for the others. Its exception is always retrieved, so
no "Task exception was never retrieved" warning, whoever was (or wasn't) waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from .._util.tasks import cancel_and_wait

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """A table of in-flight tasks, one per key."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: str) -> bool:
        return key in self._tasks

    def get(self, key: str) -> asyncio.Task[T] | None:
        """The task in flight for ``key``, if any."""
        return self._tasks.get(key)

    def start(
        self,
        key: str,
        coro: Coroutine[Any, Any, T],
        on_done: Callable[[str, asyncio.Task[T]], None],
    ) -> asyncio.Task[T]:
        """Run ``coro`` as the flight for ``key``; ``on_done`` runs before any waiter wakes."""
        task = asyncio.get_running_loop().create_task(coro, name=f"tokenfleet:{key}")
        self._tasks[key] = task

        def finished(done: asyncio.Task[T]) -> None:
            if self._tasks.get(key) is done:
                del self._tasks[key]
            if not done.cancelled():
                done.exception()  # mark retrieved: waiters (if any) get it via shield
            on_done(key, done)

        task.add_done_callback(finished)
        return task

    async def cancel_all(self) -> None:
        """Cancel every flight and wait until they have finished."""
        await cancel_and_wait(list(self._tasks.values()))
