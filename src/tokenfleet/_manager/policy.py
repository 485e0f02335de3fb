"""When a token is handed out, refreshed ahead, and no longer usable."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._exceptions import ConfigurationError
from .._models import Token
from .._util.numbers import finite_number

__all__ = ["Refresh", "check_durations", "min_ttl_error", "schedule"]


@dataclass(frozen=True, slots=True)
class Refresh:
    """When a :class:`~tokenfleet.TokenManager` refreshes a token, and until when it hands
    the current one out.

    Attributes:
        leeway: seconds before ``expires_at`` from which a token is no longer handed out;
            shrinks to a tenth of the lifetime for short-lived tokens. Default 30.
        ratio: fraction of the lifetime after which the first caller starts a background
            refresh. Default 0.8.
        jitter: up to this fraction of the lifetime is taken off the refresh point, at
            random per process and token, so a fleet does not refresh in the same
            instant. Default 0.05.
    """

    leeway: float = 30.0
    ratio: float = 0.8
    jitter: float = 0.05

    def __post_init__(self) -> None:
        for name in ("leeway", "ratio", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"Refresh.{name} must be a number of seconds/fraction")
            object.__setattr__(self, name, float(value))
        if not 0.0 < self.ratio <= 1.0 or not 0.0 <= self.jitter < self.ratio:
            raise ConfigurationError("Refresh needs 0 < ratio <= 1 and 0 <= jitter < ratio")
        if self.leeway < 0:
            raise ConfigurationError("Refresh.leeway must be >= 0 seconds")

    def schedule(self, token: Token, jitter: float = 0.0) -> tuple[float, float]:
        """``(usable_until, refresh_at)`` of ``token`` under this policy (see :func:`schedule`)."""
        return schedule(token, leeway=self.leeway, refresh_ratio=self.ratio, jitter=jitter)

    def draw_jitter(self) -> float:
        """This process's jitter for one token: uniform in ``[0, jitter]``."""
        return random.uniform(0.0, self.jitter)  # noqa: S311 - spreading, not secrecy


# --------------------------------------------------------------------------- expiry


def schedule(
    token: Token,
    *,
    leeway: float,
    refresh_ratio: float,
    jitter: float = 0.0,
) -> tuple[float, float]:
    """``(usable_until, refresh_at)`` for a token, in Unix seconds.

    * usable until ``expires_at - leeway``, where the leeway shrinks to a tenth of the
      lifetime for short-lived tokens (a 5 s token stays usable for 4.5 s);
    * refreshed ahead from ``issued_at + refresh_ratio * lifetime``, moved earlier by
      ``jitter`` (a fraction of the lifetime, drawn by the caller) so a fleet spreads out,
      and never later than ``usable_until``.
    """
    lifetime = max(token.expires_at - token.issued_at, 0.0)
    usable_until = token.expires_at - min(leeway, lifetime * 0.1)
    refresh_at = token.issued_at + lifetime * (refresh_ratio - jitter)
    return usable_until, min(refresh_at, usable_until)


def min_ttl_error(
    min_ttl: float, usable_span: float, lifetime: float | None = None
) -> ConfigurationError:
    """No token can satisfy ``min_ttl``: tokens are usable ``usable_span`` seconds."""
    granted = f"the server grants {lifetime:.0f} s lifetimes, " if lifetime is not None else ""
    return ConfigurationError(
        f"no token can stay usable for min_ttl={min_ttl:g} s: {granted}usable for "
        f"{usable_span:.0f} s; ask for a smaller min_ttl"
    )


def check_durations(
    min_backoff: float, max_backoff: float, fetch_timeout: float | None, lock_timeout: float | None
) -> None:
    """The manager's durations: finite seconds > 0 (``None``: the default), backoff ordered."""
    given = {"min_backoff": min_backoff, "max_backoff": max_backoff}
    given.update(
        {
            k: v
            for k, v in (("fetch_timeout", fetch_timeout), ("lock_timeout", lock_timeout))
            if v is not None
        }
    )
    for name, value in given.items():
        if not finite_number(value) or value <= 0:
            raise ConfigurationError(
                f"{name} must be a finite number of seconds > 0, not {value!r}"
            )
    if max_backoff < min_backoff:
        raise ConfigurationError("need min_backoff <= max_backoff")
