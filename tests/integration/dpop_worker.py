"""One worker process of test_dpop_fleet.py: DPoP tokens shared through an encrypted Redis.

It builds ``ClientCredentials(dpop=True)`` (its own proof key) and a ``TokenManager`` on
``RedisStore(url, cipher=AesGcmCipher.from_env())``, prints ``READY``, waits for the start
file, then ``--concurrency`` coroutines each call the dev server's protected resource once
through ``tokenfleet.aiohttp.BearerAuth``. It prints one JSON line: the statuses seen and
the thumbprints of the keys its tokens were bound to. Secrets come from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter

import aiohttp

import tokenfleet
import tokenfleet.aiohttp


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for(path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


async def main(args: argparse.Namespace) -> dict[str, object]:
    client = tokenfleet.ClientCredentials(
        args.token_url,
        client_id=args.client_id,
        client_secret=os.environ["TOKENFLEET_CLIENT_SECRET"],
        dpop=True,
    )
    store = tokenfleet.RedisStore(args.redis, cipher=tokenfleet.AesGcmCipher.from_env())
    statuses: Counter[int] = Counter()
    keys: set[str] = set()
    async with tokenfleet.TokenManager(client, store=store) as tokens:
        auth = tokenfleet.aiohttp.BearerAuth(tokens, origins=[args.origin])
        async with aiohttp.ClientSession(middlewares=[auth]) as http:
            say("READY")
            await asyncio.to_thread(wait_for, args.start_file)

            async def call() -> None:
                async with http.get(args.resource) as response:
                    statuses[response.status] += 1
                    body = await response.json()
                    if isinstance(body.get("jkt"), str):
                        keys.add(body["jkt"])

            async with asyncio.timeout(120):
                await asyncio.gather(*(call() for _ in range(args.concurrency)))
    assert client.dpop is not None
    return {"statuses": dict(statuses), "keys": sorted(keys), "own_key": client.dpop.thumbprint}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in (
        "--token-url",
        "--client-id",
        "--redis",
        "--origin",
        "--resource",
        "--start-file",
    ):
        parser.add_argument(name, required=True)
    parser.add_argument("--concurrency", type=int, default=250)
    result = asyncio.run(main(parser.parse_args()))
    say(json.dumps(result))
    sys.exit(0)
