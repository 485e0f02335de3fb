"""The ``credentials`` check: where each credential comes from, its age or expiry, and
what to fix (a file readable by other users, an assertion that expires before the next
refresh). Never the credential itself."""

from __future__ import annotations

import time

from .._client.credentials import ClientCredentials
from .._client.sources import SourceInfo
from .._models import Token
from .result import USAGE, CheckResult, failed, passed, skipped

__all__ = ["check_sources"]

_NAME = "credentials"
_REFRESH_RATIO = 0.8  # the TokenManager default: when the next fetch happens


def check_sources(client: ClientCredentials, token: Token | None) -> list[CheckResult]:
    """One result per credential source of ``client`` (after its first fetch)."""
    infos = client.credential_sources()
    if not infos:
        return [skipped(_NAME, f"{client.auth_method} uses no credential")]
    now = time.time()
    return [_result(info, token, now) for info in infos]


def _result(info: SourceInfo, token: Token | None, now: float) -> CheckResult:
    detail = f"{info.role}: {_where(info)}{_age(info, now)}{_expiry(info, now)}"
    problems = list(info.problems)
    if info.role == "client_assertion" and info.expires_at is not None and token is not None:
        next_fetch = token.issued_at + token.lifetime * _REFRESH_RATIO
        if info.expires_at < next_fetch:
            problems.append(
                f"the assertion expires {info.expires_at - now:.0f} s from now, before the "
                f"next token refresh (in {next_fetch - now:.0f} s): make sure its writer "
                "rewrites it before then (the kubelet does at 80 % of expirationSeconds; a "
                "longer expirationSeconds gives more room)"
            )
    if problems:
        return failed(_NAME, detail, "; ".join(problems), USAGE)
    return passed(_NAME, detail)


def _where(info: SourceInfo) -> str:
    if info.kind == "file":
        return f"file {info.where}"
    if info.kind == "callable":
        return f"callable {info.where} (asked before every token request)"
    return "a value given at start (not re-read: rotating it needs a restart)"


def _age(info: SourceInfo, now: float) -> str:
    if info.changed_at is None:
        return ""
    return f", changed {_span(now - info.changed_at)} ago"


def _expiry(info: SourceInfo, now: float) -> str:
    if info.expires_at is None:
        return ""
    left = info.expires_at - now
    return f", expires in {_span(left)}" if left >= 0 else f", EXPIRED {_span(-left)} ago"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
