"""``Retry``: how one ``fetch_token`` retries transport errors, HTTP 5xx and 429.

A value object with its delay arithmetic (exponential backoff with full jitter, and the
server's ``Retry-After``, RFC 9110 §10.2.3); ``exchange.TokenExchange`` applies it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._exceptions import ConfigurationError
from .._util.numbers import finite_number

__all__ = ["Retry"]


@dataclass(frozen=True, slots=True)
class Retry:
    """How a single ``fetch_token`` retries transport errors, HTTP 5xx and 429.

    OAuth errors (4xx) are never retried: asking again with the same credentials gets the
    same answer. Delays use exponential backoff with full jitter; a ``Retry-After`` header
    is honoured when it is no longer than ``max_retry_after``.

    Attributes:
        attempts: total tries, the first included (1 disables retrying).
        backoff: base delay in seconds; try *n* waits up to ``backoff * 2**(n-1)``.
        max_backoff: cap on one backoff delay.
        max_retry_after: the longest ``Retry-After`` we wait for; longer gives up at once.
    """

    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigurationError("Retry.attempts must be an int >= 1")
        for name in ("backoff", "max_backoff", "max_retry_after"):
            if not finite_number(getattr(self, name)) or getattr(self, name) < 0:
                raise ConfigurationError(f"Retry.{name} must be a number of seconds >= 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or ``None`` to give up now."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography
