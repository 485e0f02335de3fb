"""A fleet: 4 worker processes × 250 coroutines share one store, and one token request.

Each process has its own ``TokenManager``; they share a store, whose lock makes the
single flight fleet-wide. The store comes from ``TOKENFLEET_STORE`` (e.g.
``redis://localhost:6379/0``); by default a file store in a temporary directory.

    python examples/fleet.py
    TOKENFLEET_STORE=redis://localhost:6379/0 python examples/fleet.py
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import tempfile

import tokenfleet
from tokenfleet.testing import DevAuthServer

PROCESSES, CALLERS = 4, 250


async def worker(token_url: str, client_id: str, secret: str, store_url: str) -> str:
    client = tokenfleet.ClientCredentials(token_url, client_id=client_id, client_secret=secret)
    store = tokenfleet.store_from_url(store_url)
    async with tokenfleet.TokenManager(client, store=store) as tokens:
        results = await asyncio.gather(*(tokens.get_token() for _ in range(CALLERS)))
    return results[0].fingerprint


def run_worker(*args: str) -> str:
    return asyncio.run(worker(*args))


def main(store_url: str) -> None:
    with DevAuthServer().run_in_thread() as idp:
        args = (idp.token_url, idp.client_id, idp.client_secret, store_url)
        # "spawn": fresh interpreters, as separate hosts or containers would be.
        with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
            fingerprints = pool.starmap(run_worker, [args] * PROCESSES)
        print(f"store: {store_url.split('://')[0]}")
        print(f"processes: {PROCESSES}, callers: {PROCESSES * CALLERS}")
        print(f"distinct tokens: {len(set(fingerprints))}")
        print(f"token requests seen by the server: {idp.token_requests()}")


if __name__ == "__main__":
    if url := os.environ.get("TOKENFLEET_STORE"):
        main(url)
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(f"file://{directory}")
