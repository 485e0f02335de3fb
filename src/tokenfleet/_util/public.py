"""Public names report their public module, as httpx does: a traceback or ``repr`` of a
class says ``tokenfleet.TokenManager``, not where the class happens to be defined."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["publish"]


def publish(namespace: Mapping[str, Any], names: Iterable[str], module: str) -> None:
    """Set ``__module__ = module`` on each class and function of ``names`` in ``namespace``."""
    for name in names:
        value = namespace.get(name)
        if isinstance(value, type) or (callable(value) and hasattr(value, "__code__")):
            value.__module__ = module
