"""The core abstraction: a ``TokenSource`` gives tokens (as Go's ``oauth2.TokenSource``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from ._models import Token

__all__ = ["KeyedTokenSource", "TokenSource"]


@runtime_checkable
class TokenSource(Protocol):
    """Anything that can produce a token for a set of scopes.

    ``ClientCredentials`` is a source that fetches; ``TokenManager`` is a source that
    caches, de-duplicates and refreshes the tokens of another source.
    """

    async def token(self, scopes: str | Iterable[str] | None = None) -> Token:
        """A token for ``scopes`` (``None``: the source's defaults)."""
        ...


@runtime_checkable
class KeyedTokenSource(TokenSource, Protocol):
    """A source that can name the identity of its tokens, for cache keys."""

    def cache_key(self, scopes: str | Iterable[str] | None = None) -> str:
        """A stable key, equal across processes, for the token of ``scopes``."""
        ...
