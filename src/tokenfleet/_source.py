"""The core abstraction: a ``TokenSource`` gives tokens (as Go's ``oauth2.TokenSource``).

A source may also *describe itself* (:class:`DescribedSource`): its client id, token
endpoint, resources and timeout. The manager reads the description instead of poking at
attributes, and passes it through (``TokenManager.describe()``), so a manager wrapping a
manager, or a custom wrapper that forwards ``describe()``, still tells the HTTP
integrations where the token endpoint is (a bearer token is never sent there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._models import Token

__all__ = [
    "DescribedSource",
    "KeyedTokenSource",
    "RotatingSource",
    "SourceDescription",
    "TokenSource",
    "description_of",
]


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


@runtime_checkable
class RotatingSource(Protocol):
    """A keyed source whose cache identity can change while it runs.

    ``ClientCredentials`` with ``tls_client_cert=`` is one: its cache key follows the
    certificate's fingerprint, because its tokens may be bound to the certificate
    (RFC 8705 §3). A ``TokenManager`` memoizes keys; it asks ``key_generation()`` only
    off its hot path (before it would start a fetch), and when the number moved it drops
    its keys, so the next token is fetched under the new key.
    """

    def key_generation(self) -> int:
        """A number that changes whenever ``cache_key()`` may have changed.

        May check the credential files (a ``stat`` each): it is called when a fetch is
        about to happen, never on the manager's hot path.
        """
        ...


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """What a source says about itself; every field is optional.

    Attributes:
        client_id: the OAuth client id (for logs, events and metrics).
        token_url: the token endpoint, when known without a request: bearer tokens are
            never sent to it.
        issuer: the authorization server's issuer identifier.
        resources: RFC 8707 resource indicators: where the tokens are meant to go.
        timeout: the longest one ``token()`` call takes, in seconds (the manager waits
            a little longer).
    """

    client_id: str | None = None
    token_url: str | None = None
    issuer: str | None = None
    resources: tuple[str, ...] = ()
    timeout: float | None = None


@runtime_checkable
class DescribedSource(Protocol):
    """A source that describes itself; wrappers should forward their inner source's."""

    def describe(self) -> SourceDescription:
        """This source's :class:`SourceDescription`."""
        ...


_NOTHING = SourceDescription()


def description_of(source: object) -> SourceDescription:
    """``source.describe()``, or an empty description for a source that has none."""
    if isinstance(source, DescribedSource):
        description = source.describe()
        if isinstance(description, SourceDescription):
            return description
    return _NOTHING
