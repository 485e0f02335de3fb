"""``tokenfleet check``: diagnose a configuration, one line per check, a fix for each ✗.

Exit code 0 only if every check passes; otherwise the code of the first failure
(2 configuration, 3 refused, 4 unavailable).
"""

from __future__ import annotations

import argparse
import asyncio

from .._check.result import USAGE, CheckReport, failed, skipped
from .._check.run import CHECKS, check
from .._client.credentials import ClientCredentials
from .._client.env import missing_settings
from .._exceptions import ConfigurationError
from ._config import Settings, add_client_options, make_client, settings_from
from ._output import out
from ._report import print_result

__all__ = ["add_parser", "run"]


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
    """Run every check (``tokenfleet.check``) and print the report."""
    try:
        settings = settings_from(args)
        missing = missing_settings(settings)
        client = None if missing else make_client(settings)
    except ConfigurationError as exc:
        missing, client = [(str(exc), "correct that setting (see tokenfleet check --help)")], None
    if client is None:
        return _unconfigured(missing)
    report = asyncio.run(_check(client, settings, args.max_latency))
    out(report.summary())
    return report.exit_code


async def _check(client: ClientCredentials, settings: Settings, max_latency: float) -> CheckReport:
    async with client:
        return await check(
            client, store=settings.store, max_latency=max_latency, on_result=print_result
        )


def _unconfigured(missing: list[tuple[str, str]]) -> int:
    """Every missing setting on a line of its own, each with what sets it."""
    for what, how in missing:
        print_result(failed("configuration", what, how, USAGE))
    for name in CHECKS:
        print_result(skipped(name, "skipped (not configured)"))
    out(f"{len(missing)} setting{'s' if len(missing) > 1 else ''} missing or invalid")
    return USAGE
