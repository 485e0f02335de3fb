"""Exit codes, and one clear line for an error.

0 success · 2 usage or configuration (a wrong issuer included) · 3 authentication or
authorization refused · 4 network, server or store unavailable · 1 anything else ·
130 interrupted.
"""

from __future__ import annotations

from .._exceptions import (
    ConfigurationError,
    DiscoveryError,
    FleetCooldown,
    InsufficientScope,
    OAuthError,
    StoreError,
    TokenEndpointError,
    TransportError,
)

__all__ = ["AUTH", "OK", "OTHER", "UNAVAILABLE", "USAGE", "exit_code_of", "one_line"]

OK, OTHER, USAGE, AUTH, UNAVAILABLE, INTERRUPTED = 0, 1, 2, 3, 4, 130


def exit_code_of(exc: BaseException) -> int:
    """The exit code for an error (see the module docstring)."""
    if isinstance(exc, ConfigurationError | DiscoveryError):
        return USAGE  # a server that answers without metadata: the issuer URL is wrong
    if isinstance(exc, FleetCooldown):
        # A cooldown recorded after a refusal is still a refusal; after 429/5xx, downtime.
        return AUTH if "InvalidClient" in exc.reason else UNAVAILABLE
    if isinstance(exc, OAuthError | InsufficientScope):
        return AUTH
    if isinstance(exc, TokenEndpointError | TransportError | StoreError):
        return UNAVAILABLE
    return OTHER


_KIND = {USAGE: "configuration", AUTH: "refused", UNAVAILABLE: "unavailable", OTHER: "error"}


def one_line(command: str, exc: BaseException) -> str:
    """``tokenfleet token: refused: <message>`` on a single line, at most 500 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    kind = getattr(exc, "cli_kind", None) or _KIND.get(exit_code_of(exc), "error")
    prefix = f"tokenfleet {command}".strip()
    return f"{prefix}: {kind}: {text}"[:500]
