"""Scenario 7, DPoP (RFC 9449): what a proof costs, beside the plain Bearer path.

Per request, in one process, interleaved: signing one proof (ES256, EdDSA); what
``BearerAuth`` adds before a request is sent (the cached token from the manager and the
headers: ``Authorization`` for a Bearer token; ``Authorization`` plus a fresh proof for a
DPoP-bound one); and the resource server's ``DPoPVerifier.verify`` of an ES256 proof.
A proof is signed on the calling thread, so proofs/s per core is 10^6 / µs per proof.
"""

from __future__ import annotations

from typing import Any

from _support import dev_server, per_call_ns
from yarl import URL

import tokenfleet
from tokenfleet._client.dpop import ResourceDPoP

RESOURCE = URL("https://api.example.com/orders?page=2")


async def run(latency: float, calls: int = 2_000, rounds: int = 5) -> dict[str, Any]:
    """µs per proof and per authenticated request (client side), and per verification."""
    with dev_server(latency=latency) as server:
        managers = {
            name: tokenfleet.TokenManager(
                tokenfleet.ClientCredentials(
                    server.token_url,
                    client_id=server.client_id,
                    client_secret=server.client_secret,
                    dpop=dpop,
                )
            )
            for name, dpop in (
                ("bearer", False),
                ("es256", tokenfleet.DPoPKey.generate("ES256")),
                ("eddsa", tokenfleet.DPoPKey.generate("EdDSA")),
            )
        }
        tokens = {name: await manager.get_token() for name, manager in managers.items()}
        es256, eddsa = tokens["es256"].dpop_key, tokens["eddsa"].dpop_key
        assert es256 is not None
        assert eddsa is not None
        access = tokens["es256"].access_token
        verifier = tokenfleet.DPoPVerifier(replay_cache_size=10 * calls)
        proofs = iter(
            [es256.proof("GET", RESOURCE, access_token=access) for _ in range(calls * rounds)]
        )

        def authenticate(name: str) -> Any:
            manager, dpop = managers[name], ResourceDPoP()

            async def call() -> object:
                headers: dict[str, str] = {}
                return dpop.apply(headers, await manager.get_token(), "GET", RESOURCE)

            return call

        async def proof_es256() -> object:
            return es256.proof("GET", RESOURCE, access_token=access)

        async def proof_eddsa() -> object:
            return eddsa.proof("GET", RESOURCE, access_token=access)

        async def verify() -> object:
            return verifier.verify(
                next(proofs), method="GET", url=str(RESOURCE), access_token=access
            )

        cases = {
            "proof_es256_us": proof_es256,
            "proof_eddsa_us": proof_eddsa,
            "bearer_auth_us": authenticate("bearer"),
            "dpop_auth_es256_us": authenticate("es256"),
            "dpop_auth_eddsa_us": authenticate("eddsa"),
            "verify_es256_us": verify,
        }
        columns: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, case in cases.items():
                columns[name].append(await per_call_ns(case, calls) / 1000)
        for manager in managers.values():
            await manager.aclose()
    result = {name: min(values) for name, values in columns.items()}
    result["proofs_per_s_es256"] = 1e6 / result["proof_es256_us"]
    result["proofs_per_s_eddsa"] = 1e6 / result["proof_eddsa_us"]
    return result
