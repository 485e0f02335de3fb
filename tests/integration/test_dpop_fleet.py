"""A fleet of real processes shares one DPoP-bound token, and its key, through Redis.

4 worker processes × 250 coroutines (dpop_worker.py), each with its own proof key, on
an AES-GCM-encrypted RedisStore: one token request for the whole fleet, and every
process's resource requests accepted by the dev server, which checks every proof.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tokenfleet import AesGcmCipher
from tokenfleet.testing import DevAuthServer

WORKER = Path(__file__).with_name("dpop_worker.py")
PROCESSES, COROUTINES = 4, 250
pytestmark = [pytest.mark.slow, pytest.mark.redis]


def test_four_processes_share_one_dpop_token_through_encrypted_redis(
    redis_url: str, tmp_path: Path
) -> None:
    start = tmp_path / "start"
    env = {**os.environ, "TOKENFLEET_ENCRYPTION_KEYS": AesGcmCipher.generate_key()}
    workers: list[subprocess.Popen[str]] = []
    with DevAuthServer(token_lifetime=300, latency=0.2).run_in_thread() as idp:
        env["TOKENFLEET_CLIENT_SECRET"] = idp.client_secret
        args = [
            *("--token-url", idp.token_url, "--client-id", idp.client_id),
            *("--redis", redis_url, "--origin", idp.url, "--resource", idp.resource_url),
            *("--start-file", str(start), "--concurrency", str(COROUTINES)),
        ]
        try:
            for index in range(PROCESSES):
                with (tmp_path / f"worker-{index}.log").open("w") as log:
                    workers.append(
                        subprocess.Popen(
                            [sys.executable, str(WORKER), *args],
                            stdout=subprocess.PIPE,
                            stderr=log,
                            env=env,
                            text=True,
                        )
                    )
            for worker in workers:
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "READY"
            start.touch()
            results = []
            for index, worker in enumerate(workers):
                out, _ = worker.communicate(timeout=120)
                log_text = (tmp_path / f"worker-{index}.log").read_text()[-3000:]
                assert worker.returncode == 0, log_text
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(10)
                if worker.stdout is not None:
                    worker.stdout.close()
        token_requests = idp.token_requests()
        refused = dict(idp.dpop.refused)
        resource_requests = idp.resource_requests
    assert token_requests == 1
    assert refused == {}
    assert resource_requests == PROCESSES * COROUTINES
    for result in results:
        assert result["statuses"] == {"200": COROUTINES}, result
    # One token, bound to one key, used by every process; that key is one process's own.
    bound = {key for result in results for key in result["keys"]}
    assert len(bound) == 1
    assert bound <= {result["own_key"] for result in results}
    with redis.Redis.from_url(redis_url) as raw:
        assert all(b"PRIVATE" not in (raw.get(k) or b"") for k in raw.keys("*"))
