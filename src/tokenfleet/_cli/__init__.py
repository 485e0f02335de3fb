"""The ``tokenfleet`` command line: one small module per command.

``main`` parses the arguments, runs the command and turns errors into one line on stderr
and an exit code (see ``_errors``); no traceback, never a secret.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from .._version import __version__
from . import _check, _decode, _demo, _serve, _token
from ._errors import INTERRUPTED, exit_code_of, one_line
from ._output import err

__all__ = ["build_parser", "main"]

_EPILOG = """\
exit codes: 0 ok, 2 usage or configuration, 3 authentication/authorization refused,
            4 network, server or store unavailable

Start here:  tokenfleet demo     (a fleet sharing one token, on an embedded server)
             tokenfleet serve    (a dev authorization server to point things at)
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``tokenfleet`` parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="tokenfleet",
        description="OAuth 2.0 client-credentials tokens for fleets: get, inspect, check.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"tokenfleet {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log what tokenfleet does (stderr)"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in (_token, _decode, _check, _serve, _demo):
        module.add_parser(commands)
    for name, sub in commands.choices.items():
        sub.allow_abbrev = False  # --client-secret must never be read as --client-secret-file
        sub.set_defaults(command=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tokenfleet`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = build_parser().parse_args(argv)
    # The error itself is reported once, below; -v shows what the library logs (-vv: debug).
    level = (logging.ERROR, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        err("tokenfleet: interrupted")
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the CLI's one place to turn errors into lines
        err(one_line(args.command, exc))
        return exit_code_of(exc)
