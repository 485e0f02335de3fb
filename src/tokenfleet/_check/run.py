"""``await tokenfleet.check(client, store=...)``: the checks ``tokenfleet check`` prints.

Discovery (with an issuer), TLS, client authentication (one real token request, no
retries), latency, scopes, lifetime and token type, and the store. Usable as a readiness
probe: ``bool(report)`` is True when no check failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .._client.credentials import ClientCredentials
from .._exceptions import (
    ConfigurationError,
    CredentialError,
    DiscoveryError,
    TokenEndpointError,
    TransportError,
)
from .._models import Token
from ..stores import TokenStore
from ..stores._protocol import require_store
from .fixes import fix_for
from .grant import check_latency, check_lifetime, check_scopes, check_type, claims_of
from .probes import check_discovery, check_store, check_tls
from .result import (
    UNAVAILABLE,
    CheckReport,
    CheckResult,
    exit_code_for,
    failed,
    passed,
    skipped,
)
from .sources import check_sources

__all__ = ["CHECKS", "check"]

CHECKS = (
    "discovery",
    "TLS",
    "client authentication",
    "credentials",
    "latency",
    "scopes",
    "lifetime",
    "token type",
)


async def check(
    client: ClientCredentials,
    *,
    store: TokenStore | str | None = None,
    max_latency: float = 2.0,
    on_result: Callable[[CheckResult], None] | None = None,
) -> CheckReport:
    """Diagnose ``client`` (and ``store``): the same results ``tokenfleet check`` prints.

    The token request is made once, without retries (a retry would hide the error),
    within the client's ``timeout``. Nothing raises for a failed check:
    each failure is a :class:`CheckResult` with a ``fix``.

    Args:
        client: the client to diagnose; it is not closed.
        store: a store, or a store URL (opened and closed here); ``None`` skips the check.
        max_latency: a token request slower than this fails the latency check.
        on_result: called with each result as it comes (the CLI prints them).

    Returns:
        A :class:`CheckReport`; ``report.ok`` is True when no check failed.

    Raises:
        ConfigurationError: ``store`` is neither a store nor a store URL.
    """
    if store is not None and not isinstance(store, str):
        require_store(store, "check(store=...)")  # a caller's mistake, not a failed check
    results: list[CheckResult] = []

    def add(result: CheckResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    why = await _with_client(add, client, max_latency)
    for name in CHECKS:
        if not any(r.name == name for r in results):
            add(skipped(name, f"skipped ({why})"))
    add(await check_store(store))
    return CheckReport(tuple(results))


async def _with_client(
    add: Callable[[CheckResult], None], client: ClientCredentials, max_latency: float
) -> str:
    """Run the client's checks in order; return why the rest were not run."""
    result, token_url = await check_discovery(client)
    add(result)
    token_url = client.token_url or token_url
    if token_url is None:
        return "no token endpoint"
    add(await check_tls(client, token_url))
    token, took = await _authenticate(add, client)
    for result in check_sources(client, token):
        add(result)
    if token is None:
        return "no token"
    jwt_parts = claims_of(token)
    claims = jwt_parts[1] if jwt_parts else None
    add(check_latency(took, max_latency))
    add(check_scopes(client, token, claims))
    add(check_lifetime(token, claims))
    add(check_type(token, jwt_parts))
    return ""


async def _authenticate(
    add: Callable[[CheckResult], None], client: ClientCredentials
) -> tuple[Token | None, float]:
    name = "client authentication"
    started = time.perf_counter()
    try:
        # One attempt, bypassing the client's retry policy (a retry would hide the error)
        # without changing it for anyone else using the client meanwhile.
        async with asyncio.timeout(client.timeout):
            token = await client._exchange.once(client.scopes)
    except TimeoutError:
        fix = "check the network path to the token endpoint and the server's load"
        detail = f"no answer within {client.timeout:g} s"
        add(failed(name, detail, fix, UNAVAILABLE))
        return None, 0.0
    except (
        TokenEndpointError,
        TransportError,
        DiscoveryError,
        ConfigurationError,
        CredentialError,
    ) as exc:
        add(failed(name, str(exc), fix_for(exc, client), exit_code_for(exc)))
        return None, 0.0
    took = time.perf_counter() - started
    add(passed(name, f"{client.client_id} via {client.auth_method}: token issued"))
    return token, took
