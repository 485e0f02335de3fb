"""Exit codes, and one clear line for an error.

0 success · 2 usage or configuration (a wrong issuer included) · 3 authentication or
authorization refused · 4 network, server or store unavailable · 1 anything else ·
130 interrupted.
"""

from __future__ import annotations

from .._check.result import AUTH, OK, OTHER, UNAVAILABLE, USAGE, exit_code_for

__all__ = ["AUTH", "OK", "OTHER", "UNAVAILABLE", "USAGE", "exit_code_of", "one_line"]

INTERRUPTED = 130
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head -1`
exit_code_of = exit_code_for


_KIND = {USAGE: "configuration", AUTH: "refused", UNAVAILABLE: "unavailable", OTHER: "error"}


# The library's messages name Python arguments; on the command line, name the flags.
_AS_FLAGS = (
    ("pass allow_insecure_http=True", "pass --allow-insecure-http"),
    ("pass issuer= to discover", "use --issuer to discover"),
    ("pass token_url= (the token endpoint) or issuer= (to discover it)", "pass --token-url URL"),
    ("token_url '", "--token-url '"),
    ("issuer '", "--issuer '"),
    (
        "check client_id, the secret or key, and auth_method",
        "check --client-id, the secret or key, and --auth-method",
    ),
)
_MAX = 500


def as_flags(text: str) -> str:
    """A library message with Python argument names replaced by the CLI's flags."""
    for python, flag in _AS_FLAGS:
        text = text.replace(python, flag)
    return text


def one_line(command: str, exc: BaseException) -> str:
    """``tokenfleet token: refused: <message>`` on a single line, at most ~500 characters
    (a longer message is cut at a word boundary, with an ellipsis)."""
    text = as_flags(" ".join(str(exc).split()) or type(exc).__name__)
    kind = getattr(exc, "cli_kind", None) or _KIND.get(exit_code_of(exc), "error")
    prefix = f"tokenfleet {command}".strip()
    line = f"{prefix}: {kind}: {text}"
    if len(line) > _MAX:
        line = line[:_MAX].rsplit(" ", 1)[0] + " …"
    return line
