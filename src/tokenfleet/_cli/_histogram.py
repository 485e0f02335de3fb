"""Latency histograms: small enough to send between processes, mergeable, ~3 % precise.

A value keeps its five leading bits (``v >> shift << shift``), so a bucket is at most
1/16 of its value wide, like HdrHistogram with few significant digits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

__all__ = ["Histogram", "bucket"]

_BITS = 5


def bucket(nanoseconds: int) -> int:
    """The lower bound of the bucket ``nanoseconds`` falls in."""
    shift = max(nanoseconds.bit_length() - _BITS, 0)
    return (nanoseconds >> shift) << shift


class Histogram:
    """Counts per bucket (lower bound in nanoseconds), with percentiles."""

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: Counter[int] = Counter(counts or {})

    @classmethod
    def of(cls, samples: Iterable[int]) -> Histogram:
        """The histogram of raw samples (nanoseconds)."""
        return cls(Counter(map(bucket, samples)))

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts to this one."""
        self.counts.update(other.counts)

    @property
    def total(self) -> int:
        """How many samples."""
        return sum(self.counts.values())

    def percentile(self, fraction: float) -> float:
        """The value (seconds, bucket middle) below which ``fraction`` of samples lie."""
        total = self.total
        if not total:
            return 0.0
        rank = max(1, round(fraction * total))
        seen = 0
        for low in sorted(self.counts):
            seen += self.counts[low]
            if seen >= rank:
                return _middle(low) / 1e9
        return _middle(max(self.counts)) / 1e9

    def maximum(self) -> float:
        """The largest bucket's middle, in seconds."""
        return _middle(max(self.counts)) / 1e9 if self.counts else 0.0

    def to_json(self) -> list[list[int]]:
        """``[[low, count], ...]`` for a JSON line."""
        return [[low, count] for low, count in sorted(self.counts.items())]

    @classmethod
    def from_json(cls, pairs: Iterable[Iterable[int]]) -> Histogram:
        """The inverse of :meth:`to_json`."""
        return cls({int(low): int(count) for low, count in (tuple(p) for p in pairs)})


def _middle(low: int) -> float:
    width = 1 << max(low.bit_length() - _BITS, 0)
    return low + (width - 1) / 2
