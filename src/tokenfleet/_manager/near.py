"""The near cache: this process's tokens, the scopes → cache-key table, and tombstones.

All three are per-key tables that an unbounded set of keys (scope sets, audiences) must
not grow without limit, so each is bounded here, with its eviction rule beside it:

* ``entries``: the token of each key with its two deadlines; at ``max_keys`` the oldest
  entry goes (it is read from the store again on its next miss);
* the key table memoizes ``scopes → (cache key, normalized scopes)``, because
  normalizing and hashing scopes costs more than the whole hot path;
* tombstones: the last invalidated access token of each key, so a token dropped here
  (or by another process) is not taken back from the store or a finishing flight.

The key table holds as long as the source's identity does. A ``RotatingSource`` (a
client whose TLS certificate rotated: RFC 8705 §3 tokens may be bound to it) says when
it moved; ``identity_moved`` asks, off the hot path only, and then forgets every key and
entry, all made under the old identity.

The manager's hot path reads ``entries`` directly (a bound dict, no call); everything
else goes through the methods below.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._client.request import cache_key, normalize_scopes
from .._exceptions import ConfigurationError
from .._models import Token
from .._source import KeyedTokenSource, RotatingSource, TokenSource
from .._util.bounded import MAX_KEYS, BoundedDict, make_room

__all__ = ["Entry", "NearCache", "Scopes"]

Scopes = tuple[str, ...] | None


class Entry:
    """A near-cache entry: the token and its two deadlines (Unix seconds)."""

    __slots__ = ("refresh_at", "token", "usable_until")

    def __init__(self, token: Token, usable_until: float, refresh_at: float) -> None:
        self.token = token
        self.usable_until = usable_until
        self.refresh_at = refresh_at


class NearCache:
    """Tokens by cache key, the key table and the tombstones of one manager.

    Args:
        source: whose tokens; its ``cache_key`` names them (else ``namespace`` does).
        namespace: the prefix of every key (required for a source without ``cache_key``).
        max_keys: how many entries are kept; the key table keeps at least ``MAX_KEYS``.
        enabled: ``False`` keeps no tokens (the key table and tombstones still work).
    """

    def __init__(
        self,
        source: TokenSource,
        namespace: str | None,
        max_keys: int,
        enabled: bool = True,
    ) -> None:
        # Plain dicts, bounded by make_room: get_token reads them on every call. Never
        # rebound: the manager holds ``entries``.
        self.entries: dict[str, Entry] = {}
        self.max_keys = max_keys
        self.enabled = enabled
        self._source = source
        self._namespace = namespace
        self._keys: dict[object, tuple[str, Scopes]] = {}
        self._keys_limit = max(max_keys, MAX_KEYS)
        self._tombstones: BoundedDict[str, str] = BoundedDict()
        self._generation_of = source.key_generation if isinstance(source, RotatingSource) else None
        self.generation = self._generation_of() if self._generation_of else 0

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __getitem__(self, key: str) -> Entry:
        return self.entries[key]

    def get(self, key: str) -> Entry | None:
        """The entry of ``key``, if any."""
        return self.entries.get(key)

    # ------------------------------------------------------------------ keys

    def key_for(self, scopes: str | Iterable[str] | None) -> tuple[str, Scopes]:
        """``(cache key, normalized scopes)`` of ``scopes`` as the caller spelled them."""
        try:
            lookup: object = scopes if scopes is None or isinstance(scopes, str) else tuple(scopes)
            known = self._keys.get(lookup)
        except TypeError:  # not iterable, or holds unhashable items such as lists
            raise ConfigurationError(
                f"scopes must be a string or an iterable of strings, not {_kind(scopes)}"
            ) from None
        if known is not None:
            return known
        normalized = None if scopes is None else normalize_scopes(lookup)  # type: ignore[arg-type]
        key = self._make_key(normalized)
        make_room(self._keys, self._keys_limit, lookup)
        self._keys[lookup] = (key, normalized)
        return key, normalized

    def identity_moved(self) -> bool:
        """Before a fetch: has the source's cache identity changed? Then every key and
        entry (made under the old one) is dropped. Never on the hot path: it may ``stat``."""
        if self._generation_of is None:
            return False
        generation = self._generation_of()
        if generation == self.generation:
            return False
        self.generation = generation
        self._keys.clear()
        self.entries.clear()  # the same dict object: the manager's hot path holds it
        return True

    def _make_key(self, scopes: Scopes) -> str:
        if isinstance(self._source, KeyedTokenSource):
            key = self._source.cache_key(scopes)
            return f"{self._namespace}:{key}" if self._namespace else key
        return cache_key(
            token_url="",
            client_id=self._namespace or "",
            auth_method="",
            credential="",
            scopes=scopes or (),
            audience=None,
            resources=(),
            extra_params={},
        )

    def key_of(self, token: Token, default: str) -> str:
        """The key ``token`` was handed out under (``default`` if it is not held)."""
        for key, entry in self.entries.items():
            if entry.token.access_token == token.access_token:
                return key
        return default

    # ------------------------------------------------------------------ entries

    def put(self, key: str, token: Token, usable_until: float, refresh_at: float) -> None:
        """Hold ``token`` for ``key``; at ``max_keys`` the oldest entry goes."""
        if not self.enabled:
            return
        make_room(self.entries, self.max_keys, key)
        self.entries[key] = Entry(token, usable_until, refresh_at)

    def clear(self) -> None:
        """Drop every entry (the dict object stays the same)."""
        self.entries.clear()

    # ------------------------------------------------------------------ tombstones

    def is_dropped(self, key: str, token: Token) -> bool:
        """Whether ``token`` is the last one invalidated under ``key``."""
        return self._tombstones.get(key) == token.access_token

    def invalidate(self, key: str, token: Token | None) -> Token | None:
        """Drop ``token`` (``None``: whatever is held) under ``key``; a newer entry stays.

        Returns the token to compare-and-delete elsewhere (the store, the fleet), now
        tombstoned: ``token`` itself, or the one held when ``token`` is ``None``.
        """
        entry = self.entries.get(key)
        if token is None or (entry is not None and entry.token.access_token == token.access_token):
            self.entries.pop(key, None)
        if token is None and entry is not None:
            token = entry.token
        if token is not None:
            self._tombstones[key] = token.access_token
        return token

    def drop_fingerprint(self, key: str, fingerprint: str) -> bool:
        """Another process invalidated the token with ``fingerprint`` (``"*"``: any);
        whether a token held here was dropped."""
        entry = self.entries.get(key)
        if entry is not None and fingerprint in ("*", entry.token.fingerprint):
            del self.entries[key]
            self._tombstones[key] = entry.token.access_token
            return True
        return False


def _kind(value: object) -> str:
    """What a bad argument is, for a message (its type, and what it holds if a sequence)."""
    if isinstance(value, list | tuple):
        inner = {type(item).__name__ for item in value}
        return f"a {type(value).__name__} of {', '.join(sorted(inner)) or 'nothing'}"
    return f"a {type(value).__name__}"
