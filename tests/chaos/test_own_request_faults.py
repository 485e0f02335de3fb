"""Faults on the requests tokenfleet makes for itself, with everything shared.

One aiohttp session carries ``BearerAuth`` and is also the session of an ``issuer=``
client and of a ``JWTVerifier``; discovery and JWK Set documents arrive in 8-byte
chunks; the token endpoint fails in every way the fault plan knows (503 with
Retry-After, dropped connections, cut JSON, slow bodies). The promises: every request
ends within its bound (no wait on our own middleware), each answer is a 200 carrying a
token that verifies or a ``TokenFleetError``, and no error chain shows the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import aiohttp
import pytest
from chaos_harness import LoopWatch, log

from helpers import client_for
from hostile import Deferred, assert_no_credentials, basic
from tokenfleet import JWTVerifier, Retry, TokenFleetError, TokenManager
from tokenfleet.aiohttp import BearerAuth
from tokenfleet.testing import DevAuthServer, Fault

pytestmark = pytest.mark.slow

FAULTS = [
    Fault(status=503, retry_after=1),
    Fault(drop_connection=True),
    Fault(status=200, malformed_json=True),
    Fault(slow_body=0.3),
]
ROUNDS = 6  # each: invalidate, then CALLERS requests at once
CALLERS = 40
MAX_BACKOFF = 1.0


async def test_shared_session_with_trickled_documents_and_token_faults(
    loop_watch: LoopWatch,
) -> None:
    async with DevAuthServer() as idp:
        idp.document_trickle = 0.2
        idp.metadata_overrides = {"op_policy_uri": "https://idp.example/" + "p" * 3000}
        for fault in FAULTS:
            idp.inject_fault(fault, ratio=0.15)
        secrets = (idp.client_secret, basic(idp.client_id, idp.client_secret))
        outcomes: Counter[str] = Counter()
        deferred = Deferred()
        async with aiohttp.ClientSession(middlewares=[deferred]) as session:
            client = client_for(
                idp,
                issuer=idp.issuer,
                session=session,
                retry=Retry(attempts=3, backoff=0.05, max_retry_after=2.0),
                timeout=4.0,
            )
            async with (
                TokenManager(client, min_backoff=0.1, max_backoff=MAX_BACKOFF) as tokens,
                JWTVerifier(issuer=idp.issuer, audience=None, session=session) as verifier,
            ):
                deferred.middlewares.append(BearerAuth(tokens, origins=[idp.url]))

                async def call() -> str:
                    try:
                        async with session.get(idp.resource_url) as response:
                            if response.status != 200:
                                return f"HTTP {response.status}"
                            sent = response.request_info.headers["Authorization"]
                        await verifier.verify(sent.removeprefix("Bearer "))
                        return "ok"
                    except TokenFleetError as exc:
                        assert_no_credentials(exc, *secrets)
                        return type(exc).__name__

                async with asyncio.timeout(90):  # a deadlock fails here, never hangs
                    for _ in range(ROUNDS):
                        await asyncio.sleep(MAX_BACKOFF)  # past any backoff of the last round
                        with contextlib.suppress(TokenFleetError):  # faults hit this too
                            await tokens.invalidate(await tokens.get_token())
                        results = await asyncio.gather(*(call() for _ in range(CALLERS)))
                        outcomes.update(results)
        log.warning("shared session under faults: %s", dict(outcomes))
    assert outcomes["ok"] > 0
    assert set(outcomes) - {"ok"} <= {
        "ServerError",
        "TransportError",
        "FetchTimeout",
        "InvalidTokenResponse",
    }, outcomes
