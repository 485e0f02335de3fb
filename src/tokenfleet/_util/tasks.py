"""Task helpers shared by the manager and the stores."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(
    tasks: list[asyncio.Task[Any]], *, interval: float = 0.2, attempts: int = 25
) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again every ``interval`` seconds.

    A third-party await that swallows one cancellation (seen with a redis-py pub/sub read
    racing its own read timeout) must not hang ``aclose()``: the cancellation is repeated,
    and after ``attempts`` the tasks are left to finish on their own.
    """
    pending = {task for task in tasks if not task.done()}
    for _ in range(attempts):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=interval)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "Task exception was never retrieved"
