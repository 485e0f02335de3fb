"""The lines of ``tokenfleet check``: one per check, ✓/✗, and the fix for each ✗."""

from __future__ import annotations

from .._check.result import CheckResult
from ._errors import as_flags
from ._output import mark, out

__all__ = ["print_result"]


def print_result(result: CheckResult) -> None:
    """Print one result as it comes (a hanging check shows where it hangs)."""
    out(f"{mark(result.ok)} {result.name:<22} {as_flags(result.detail)}")
    if result.ok is False and result.fix:
        out(f"  {'':<22} fix: {as_flags(result.fix)}")
