"""The ``tokenfleet`` command line: one small module per command.

``main`` parses the arguments, runs the command and turns errors into one line on stderr
and an exit code (see ``_errors``); no traceback, never a secret.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from .._client.http import HTTP_LOGGER
from .._version import __version__
from . import _check, _decode, _demo, _serve, _token
from ._errors import BROKEN_PIPE, INTERRUPTED, exit_code_of, one_line
from ._output import err

__all__ = ["build_parser", "main"]

_EPILOG = """\
exit codes: 0 ok, 2 usage or configuration, 3 authentication/authorization refused,
            4 network, server or store unavailable, 141 stdout closed (| head)

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
    parser.add_argument(
        "--log-http",
        action="store_true",
        help="log each HTTP request tokenfleet makes: method, URL, status, latency "
        "(stderr; never bodies, secrets or tokens)",
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
    if args.log_http:
        logging.getLogger(HTTP_LOGGER).setLevel(logging.DEBUG)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        err("tokenfleet: interrupted")
        return INTERRUPTED
    except BrokenPipeError:
        return _pipe_closed()
    except Exception as exc:  # noqa: BLE001 - the CLI's one place to turn errors into lines
        if _is_broken_pipe(exc):
            return _pipe_closed()
        err(one_line(args.command, exc))
        return exit_code_of(exc)


def _is_broken_pipe(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, BrokenPipeError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _pipe_closed() -> int:
    """The reader went away (``tokenfleet check | head -3``): stop quietly, as Unix tools
    do, with 128 + SIGPIPE. Point stdout at /dev/null so the interpreter's final flush
    does not complain about the pipe once more."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return BROKEN_PIPE
