"""``tokenfleet check``: diagnose a configuration, one line per check, a fix for each ✗.

Exit code 0 only if every check passes; otherwise the code of the first failure
(2 configuration, 3 refused, 4 unavailable).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from .._client.credentials import ClientCredentials, Retry
from .._exceptions import (
    ConfigurationError,
    DiscoveryError,
    TokenEndpointError,
    TransportError,
)
from .._models import Token
from ._config import Settings, add_client_options, make_client, settings_from
from ._errors import USAGE, exit_code_of
from ._fixes import fix_for
from ._grant import check_latency, check_lifetime, check_scopes, check_type, claims_of
from ._output import out
from ._probes import check_discovery, check_store, check_tls
from ._report import Report, failed, passed, skipped

__all__ = ["add_parser", "run"]

_AFTER_TOKEN = ("latency", "scopes", "lifetime", "token type")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``check``."""
    parser = commands.add_parser(
        "check",
        help="diagnose a configuration: discovery, TLS, credentials, scopes, store",
        description="Diagnose a client configuration: discovery (with --issuer), TLS, client "
        "authentication (one real token request), granted scopes, token lifetime and type, "
        "round-trip latency, and the store (reachable, lock works). One line per check; "
        "exit code 0 only if all pass.",
    )
    parser.add_argument(
        "--max-latency",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="a token request slower than this fails the latency check (default 2)",
    )
    add_client_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run every check and print the report."""
    report = Report()
    asyncio.run(_run_checks(args, report))
    out(report.summary())
    return report.exit_code


async def _run_checks(args: argparse.Namespace, report: Report) -> None:
    try:
        settings = settings_from(args)
        client = make_client(settings, retry=Retry(attempts=1))
    except ConfigurationError as exc:
        report.add(failed("configuration", str(exc), "fix the setting named above", USAGE))
        _skip_rest(report, "no client")
        return
    async with client:
        await _with_client(report, client, settings, args.max_latency)
    report.add(await check_store(settings))


async def _with_client(
    report: Report, client: ClientCredentials, settings: Settings, max_latency: float
) -> None:
    result, token_url = await check_discovery(client)
    report.add(result)
    token_url = client.token_url or token_url
    if token_url is None:
        _skip_rest(report, "no token endpoint")
        return
    report.add(await check_tls(settings, token_url))
    token, took = await _authenticate(report, client)
    if token is None:
        _skip_rest(report, "no token")
        return
    jwt_parts = claims_of(token)
    claims = jwt_parts[1] if jwt_parts else None
    report.add(check_latency(took, max_latency))
    report.add(check_scopes(client, token, claims))
    report.add(check_lifetime(token, claims))
    report.add(check_type(token, jwt_parts))


async def _authenticate(report: Report, client: ClientCredentials) -> tuple[Token | None, float]:
    name = "client authentication"
    started = time.perf_counter()
    try:
        token = await client.fetch_token()
    except (TokenEndpointError, TransportError, DiscoveryError, ConfigurationError) as exc:
        report.add(failed(name, str(exc), fix_for(exc, client), exit_code_of(exc)))
        return None, 0.0
    took = time.perf_counter() - started
    report.add(passed(name, f"{client.client_id} via {client.auth_method}: token issued"))
    return token, took


def _skip_rest(report: Report, why: str) -> None:
    for name in ("discovery", "TLS", "client authentication", *_AFTER_TOKEN):
        if not any(r.name == name for r in report.results):
            report.add(skipped(name, f"skipped ({why})"))
