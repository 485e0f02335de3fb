"""What ``tokenfleet.check`` returns: one ``CheckResult`` per check, in a ``CheckReport``."""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import (
    ConfigurationError,
    CredentialError,
    DiscoveryError,
    EndpointNotFound,
    FleetCooldown,
    InsufficientScope,
    OAuthError,
    StoreError,
    TokenEndpointError,
    TransportError,
)

__all__ = ["AUTH", "OK", "UNAVAILABLE", "USAGE", "CheckReport", "CheckResult", "exit_code_for"]

# The CLI's exit codes (docs/cli.md), which a failed check stands for.
OK, OTHER, USAGE, AUTH, UNAVAILABLE = 0, 1, 2, 3, 4


def exit_code_for(exc: BaseException) -> int:
    """2 configuration, 3 refused, 4 unavailable, 1 anything else (docs/cli.md)."""
    # A server that answers without metadata (the issuer URL is wrong) or a URL with no
    # token endpoint behind it (404/405) is a configuration error, not a refusal.
    if isinstance(exc, ConfigurationError | CredentialError | DiscoveryError | EndpointNotFound):
        return USAGE
    if isinstance(exc, FleetCooldown):
        # A cooldown recorded after a refusal is still a refusal; after 429/5xx, downtime.
        return AUTH if "InvalidClient" in exc.reason else UNAVAILABLE
    if isinstance(exc, OAuthError | InsufficientScope):
        return AUTH
    if isinstance(exc, TokenEndpointError | TransportError | StoreError):
        return UNAVAILABLE
    return OTHER


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome.

    Attributes:
        name: ``discovery``, ``TLS``, ``client authentication``, ``credentials`` (one
            per credential source), ``latency``, ``scopes``,
            ``lifetime``, ``token type`` or ``store``.
        ok: True passed, False failed, None skipped.
        detail: what was found, one line.
        fix: for a failure, what to do about it.
        exit_code: the ``tokenfleet check`` exit code a failure stands for (2
            configuration, 3 refused, 4 unavailable); 0 otherwise.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
    exit_code: int = OK


def passed(name: str, detail: str) -> CheckResult:
    """A ✓ result."""
    return CheckResult(name, True, detail)


def failed(name: str, detail: str, fix: str, code: int) -> CheckResult:
    """A ✗ result with its fix."""
    return CheckResult(name, False, detail, fix, code)


def skipped(name: str, detail: str) -> CheckResult:
    """A – result."""
    return CheckResult(name, None, detail)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every check's result, in the order they ran.

    ``bool(report)`` is ``report.ok``: usable as a readiness probe.
    """

    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """No check failed (skipped ones neither pass nor fail)."""
        return not self.failures

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The failed checks."""
        return tuple(r for r in self.results if r.ok is False)

    @property
    def exit_code(self) -> int:
        """0 if nothing failed, else the code of the first failure (as the CLI exits)."""
        return self.failures[0].exit_code if self.failures else OK

    def __bool__(self) -> bool:
        return self.ok

    def __getitem__(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def summary(self) -> str:
        """``all 7 checks passed`` or ``2 of 7 checks failed``."""
        ran = [r for r in self.results if r.ok is not None]
        bad = sum(r.ok is False for r in ran)
        if not bad:
            return f"all {len(ran)} checks passed"
        return f"{bad} of {len(ran)} checks failed"
