"""The lines of ``tokenfleet check``: one per check, ✓/✗, and the fix for each ✗."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import OK, UNAVAILABLE
from ._output import mark, out

__all__ = ["Report", "Result"]


@dataclass(frozen=True)
class Result:
    """One check's outcome: ``ok`` is True, False, or None for skipped."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
    code: int = UNAVAILABLE  # the exit code this failure stands for


def passed(name: str, detail: str) -> Result:
    """A ✓ line."""
    return Result(name, True, detail)


def failed(name: str, detail: str, fix: str, code: int) -> Result:
    """A ✗ line with its fix."""
    return Result(name, False, detail, fix, code)


def skipped(name: str, detail: str) -> Result:
    """A – line."""
    return Result(name, None, detail)


@dataclass
class Report:
    """Prints each result as it comes (a hanging check shows where it hangs)."""

    results: list[Result] = field(default_factory=list)

    def add(self, result: Result) -> Result:
        """Print and keep ``result``."""
        self.results.append(result)
        out(f"{mark(result.ok)} {result.name:<22} {result.detail}")
        if result.ok is False and result.fix:
            out(f"  {'':<22} fix: {result.fix}")
        return result

    @property
    def exit_code(self) -> int:
        """0 if nothing failed, else the code of the first failure."""
        failures = [r for r in self.results if r.ok is False]
        return failures[0].code if failures else OK

    def summary(self) -> str:
        """``all 7 checks passed`` or ``2 of 7 checks failed``."""
        ran = [r for r in self.results if r.ok is not None]
        bad = sum(r.ok is False for r in ran)
        if not bad:
            return f"all {len(ran)} checks passed"
        return f"{bad} of {len(ran)} checks failed"
