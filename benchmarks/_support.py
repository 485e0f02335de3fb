"""Shared helpers for the benchmark scenarios: the dev server in its own process, timing,
and the HTTP settings every contender gets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Server:
    """A dev authorization server running in a separate process (its CPU is not ours)."""

    process: subprocess.Popen[str]
    info: dict[str, str]

    @property
    def token_url(self) -> str:
        return self.info["token_url"]

    @property
    def client_id(self) -> str:
        return self.info["client_id"]

    @property
    def client_secret(self) -> str:
        return self.info["client_secret"]

    @property
    def url(self) -> str:
        return self.info["url"]

    def stats(self) -> dict[str, int]:
        url = self.info["url"] + "/stats"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return json.loads(response.read())  # type: ignore[no-any-return]


@contextmanager
def dev_server(lifetime: float = 3600.0, latency: float = 0.02) -> Iterator[Server]:
    """Start ``python -m tokenfleet.testing`` and wait until it prints its settings."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tokenfleet.testing",
            "--lifetime",
            str(lifetime),
            "--latency",
            str(latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    info: dict[str, str] = {}
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        for line in process.stdout:
            if line.startswith("Ctrl-C") or time.monotonic() > deadline:
                break
            name, _, value = line.partition(":")
            info[name.strip()] = value.strip()
        if "token_url" not in info:
            raise RuntimeError("the dev server did not start")
        yield Server(process, info)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


# The same HTTP settings for every contender (where the library lets us set them).
POOL = 100  # connections per client
TIMEOUT = 10.0  # seconds, whole request
LATENCY = 0.02  # the token endpoint's answer takes this long (a realistic IdP on a LAN)
BOUND = 600.0  # no single measurement may take longer than this, in seconds


async def per_call_ns(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """Nanoseconds per ``await call()``, over ``calls`` sequential calls."""
    started = time.perf_counter_ns()
    for _ in range(calls):
        await call()
    return (time.perf_counter_ns() - started) / calls


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@contextmanager
def redis_server(directory: str) -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port; yields its URL."""
    import shutil
    import socket

    import redis

    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
