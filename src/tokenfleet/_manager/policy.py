"""When a token is handed out, refreshed ahead, and no longer usable."""

from __future__ import annotations

from .._models import Token

__all__ = ["schedule"]


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
