"""The load and the judge of the chaos tests.

``hammer`` runs N coroutines that each call ``get_token`` in a loop for a while, and
checks, call by call, the two promises of docs/reliability.md:

* no expired token is ever handed out (``time.time() < token.expires_at`` on return);
* no caller error while a usable token existed: an error is only allowed when no token
  handed out so far is still usable (before ``expires_at`` minus the manager's leeway).

``LoopWatch`` records what the event loop would otherwise only log: "Task exception was
never retrieved", "Unclosed client session", exceptions in callbacks.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tokenfleet import Token, TokenManager
from tokenfleet._manager.policy import schedule

log = logging.getLogger("chaos")


@dataclass
class Result:
    """What one ``hammer`` run saw."""

    duration: float = 0.0
    calls: int = 0
    tokens: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    expired: list[str] = field(default_factory=list)  # expired tokens handed out
    unjustified: list[str] = field(default_factory=list)  # errors while a token was usable
    outage: float = 0.0  # seconds with callers failing (no usable token)

    def summary(self) -> str:
        errors = sum(self.errors.values())
        return (
            f"{self.calls} calls in {self.duration:.1f} s, {len(self.tokens)} tokens, "
            f"{errors} errors {dict(self.errors)}, expired={len(self.expired)}, "
            f"unjustified={len(self.unjustified)}, outage {self.outage:.1f} s"
        )


class _Judge:
    def __init__(self, manager: TokenManager, result: Result) -> None:
        self.manager = manager
        self.result = result
        self.usable_until = float("-inf")  # of the newest token handed out
        self.failing_since: float | None = None

    def token(self, token: Token) -> None:
        now = time.time()
        self.result.calls += 1
        self.result.tokens.add(token.fingerprint)
        if now >= token.expires_at:
            self.result.expired.append(f"{token.fingerprint} {now - token.expires_at:.3f}s late")
        until, _ = schedule(token, leeway=self.manager.refresh.leeway, refresh_ratio=1.0)
        self.usable_until = max(self.usable_until, until)
        if self.failing_since is not None:
            self.result.outage += now - self.failing_since
            self.failing_since = None

    def error(self, exc: BaseException, started: float) -> None:
        self.result.calls += 1
        self.result.errors[type(exc).__name__] += 1
        # Usable during the whole call (a token usable when it began might have aged out).
        if time.time() < self.usable_until:
            self.result.unjustified.append(f"{type(exc).__name__}: {exc}")
        if self.failing_since is None:
            self.failing_since = started


async def hammer(
    manager: TokenManager,
    duration: float,
    *,
    callers: int = 1000,
    pause: tuple[float, float] = (0.05, 0.15),
    scopes: list[str] | None = None,
) -> Result:
    """``callers`` coroutines asking ``manager`` for a token until ``duration`` is over."""
    result = Result()
    judge = _Judge(manager, result)
    started = time.monotonic()
    deadline = started + duration

    async def caller() -> None:
        await asyncio.sleep(random.uniform(*pause))
        while time.monotonic() < deadline:
            begun = time.time()
            try:
                token = await manager.get_token(scopes)
            except Exception as exc:
                judge.error(exc, begun)
            else:
                judge.token(token)
            await asyncio.sleep(random.uniform(*pause))

    async with asyncio.timeout(duration + 60):  # never a hang
        await asyncio.gather(*(caller() for _ in range(callers)))
    result.duration = time.monotonic() - started
    if judge.failing_since is not None:  # still failing at the end
        result.outage += time.time() - judge.failing_since
    return result


class LoopWatch:
    """A loop exception handler that records every call (and still logs it)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> LoopWatch:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(self._handle)
        return self

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.calls.append(context)
        loop.default_exception_handler(context)

    def problems(self) -> list[str]:
        gc.collect()  # "never retrieved" and "unclosed" are reported when collected
        return [str(context.get("message")) for context in self.calls]


async def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks still alive besides the current one, after a few loop turns to settle."""
    for _ in range(5):
        await asyncio.sleep(0)
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
