"""One worker process of the fleet tests (run by test_fleet.py, one per process).

It builds a ClientCredentials + TokenManager on a shared store, prints ``READY``, waits for
the start file (so that every worker of a fleet starts at the same moment), runs its mode
and prints one JSON line of results. The client secret comes from the environment
(``TOKENFLEET_CLIENT_SECRET``), never from the command line, or from a file that rotates
(``--secret-file``: a ``SecretFile``); ``--assertion-file`` authenticates with an
``AssertionFile`` instead (a federated client).

Modes:
    cold        C coroutines ask for a token once, all at the same moment.
    warm        C coroutines ask in a loop for ``--duration`` seconds.
    invalidate  like warm; worker 0 invalidates its token at ``--invalidate-at``.
    hammer      no manager: C coroutines set and get the same few keys on the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import tokenfleet
from tokenfleet import Token, TokenManager
from tokenfleet.stores import TokenStore, store_from_url


class Results:
    """What a worker saw; printed as JSON at the end."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.late: set[str] = set()
        self.first: str | None = None
        self.invalidated: str | None = None
        self.errors: list[str] = []
        self.error_count = 0
        self.expired = 0
        self.calls = 0
        self.misses = 0
        self.max_latency = 0.0
        self.served_at: float | None = None  # wall time of the first token handed out

    def error(self, exc: BaseException) -> None:
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def as_json(self, **extra: Any) -> str:
        data = {k: sorted(v) if isinstance(v, set) else v for k, v in vars(self).items()}
        return json.dumps({"pid": os.getpid(), **data, **extra})


class WarningCounter(logging.Handler):
    """Counts tokenfleet WARNING records (an unreadable store entry logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class ReportingStore:
    """Delegates to a store and prints ``LOCKED`` when this process takes the fleet lock."""

    def __init__(self, inner: TokenStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @asynccontextmanager
    async def lock(self, key: str, timeout: float) -> AsyncIterator[bool]:
        async with self._inner.lock(key, timeout) as acquired:
            if acquired:
                print("LOCKED", flush=True)  # noqa: T201
            yield acquired

    @asynccontextmanager
    async def lock_or_token(
        self, key: str, timeout: float, accept: Callable[[Token], bool]
    ) -> AsyncIterator[bool | Token]:
        async with self._inner.lock_or_token(key, timeout, accept) as outcome:  # type: ignore[attr-defined]
            if outcome is True:
                print("LOCKED", flush=True)  # noqa: T201
            yield outcome


async def ask(manager: TokenManager, results: Results, late_after: float) -> Token | None:
    started = time.monotonic()
    try:
        token = await manager.get_token()
    except Exception as exc:
        results.error(exc)
        return None
    results.max_latency = max(results.max_latency, time.monotonic() - started)
    results.calls += 1
    if token.expires_at <= time.time():
        results.expired += 1
    results.tokens.add(token.fingerprint)
    results.first = results.first or token.fingerprint
    results.served_at = results.served_at or time.time()
    if time.monotonic() >= late_after:
        results.late.add(token.fingerprint)
    return token


async def loop(manager: TokenManager, results: Results, args: argparse.Namespace) -> None:
    start = time.monotonic()
    end, late_after = start + args.duration, start + args.late_after
    invalidate_at = start + args.invalidate_at
    while time.monotonic() < end:
        token = await ask(manager, results, late_after)
        if token is not None and args.invalidate_at >= 0 and time.monotonic() >= invalidate_at:
            args.invalidate_at = -1  # once per process, by whichever coroutine comes first
            results.invalidated = token.fingerprint
            await manager.invalidate(token)
        await asyncio.sleep(args.interval)


async def run_manager(args: argparse.Namespace, results: Results) -> dict[str, Any]:
    store = store_from_url(args.store)
    if args.report_lock:
        store = ReportingStore(store)
    client = make_client(args)
    lock_timeout = args.lock_timeout or None
    async with TokenManager(client, store=store, lock_timeout=lock_timeout) as manager:
        await wait_for_start(args.start_file)
        if args.mode == "cold":
            late = time.monotonic() + 3600
            await asyncio.gather(*(ask(manager, results, late) for _ in range(args.concurrency)))
        else:
            if args.mode == "invalidate" and args.index != 0:
                args.invalidate_at = -1
            await asyncio.gather(*(loop(manager, results, args) for _ in range(args.concurrency)))
        return manager.stats.as_dict()


def make_client(args: argparse.Namespace) -> tokenfleet.ClientCredentials:
    if args.assertion_file:
        assertion = tokenfleet.AssertionFile(args.assertion_file)
        return tokenfleet.ClientCredentials(
            args.token_url, client_id=args.client_id, client_assertion=assertion
        )
    secret: str | tokenfleet.SecretFile = os.environ["TOKENFLEET_CLIENT_SECRET"]
    if args.secret_file:
        secret = tokenfleet.SecretFile(args.secret_file)
    return tokenfleet.ClientCredentials(
        args.token_url, client_id=args.client_id, client_secret=secret
    )


async def hammer(args: argparse.Namespace, results: Results) -> dict[str, Any]:
    store = store_from_url(args.store)
    keys = [f"key-{n}" for n in range(3)]
    try:
        await wait_for_start(args.start_file)
        for key in keys:  # from now on, every key exists: a miss would be a torn read
            await store.set(key, new_token(), 600)
        end = time.monotonic() + args.duration

        async def one() -> None:
            while time.monotonic() < end:
                key = random.choice(keys)
                try:
                    if random.random() < 0.5:
                        await store.set(key, new_token(), 600)
                    elif await store.get(key) is None:
                        results.misses += 1
                    results.calls += 1
                except Exception as exc:
                    results.error(exc)
                await asyncio.sleep(0)

        await asyncio.gather(*(one() for _ in range(args.concurrency)))
    finally:
        await store.aclose()
    return {}


def new_token() -> Token:
    now = time.time()
    access = os.urandom(24).hex() * random.randint(1, 40)  # sizes vary: torn reads show
    return Token(access_token=access, expires_at=now + 600, issued_at=now)


async def wait_for_start(start_file: str) -> None:
    print("READY", flush=True)  # noqa: T201
    deadline = time.monotonic() + 60
    while not os.path.exists(start_file):  # noqa: ASYNC240 - a cheap local stat, polled
        if time.monotonic() > deadline:
            raise SystemExit("the start file never appeared")
        await asyncio.sleep(0.002)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["cold", "warm", "invalidate", "hammer"])
    parser.add_argument("--store", required=True)
    parser.add_argument("--start-file", required=True)
    parser.add_argument("--token-url", default="")
    parser.add_argument("--client-id", default="")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--late-after", type=float, default=3600.0)
    parser.add_argument("--invalidate-at", type=float, default=-1.0)
    parser.add_argument("--lock-timeout", type=float, default=0.0)
    parser.add_argument("--report-lock", action="store_true")
    parser.add_argument("--secret-file", default="")
    parser.add_argument("--assertion-file", default="")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    results, warnings = Results(), WarningCounter()
    logging.getLogger("tokenfleet").addHandler(warnings)
    runner = hammer if args.mode == "hammer" else run_manager
    stats = asyncio.run(runner(args, results))
    print(results.as_json(stats=stats, warnings=warnings.messages[:10]), flush=True)  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1:])
