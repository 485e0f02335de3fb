"""Checking the durations callers pass (timeouts, delays, lifetimes)."""

from __future__ import annotations

import math

__all__ = ["finite_number"]


def finite_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float (a bool is an int, but not a duration);
    a comparison such as ``value > 0`` would raise TypeError on ``None`` or a str."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
