"""Token stores: the ``TokenStore`` protocol, the built-in backends and ``store_from_url``.

Constructors are the main API (``MemoryStore()``, ``FileStore(path)``,
``RedisStore(client_or_url)``); ``store_from_url`` is a thin registry for configuration
from a CLI flag or an environment variable.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from .._exceptions import ConfigurationError
from ._protocol import TokenStore as TokenStore
from .memory import MemoryStore as MemoryStore

__all__ = ["MemoryStore", "TokenStore", "store_from_url"]


def _memory(url: str) -> TokenStore:
    return MemoryStore()


_SCHEMES: dict[str, Callable[[str], TokenStore]] = {
    "memory": _memory,
}


def store_from_url(url: str) -> TokenStore:
    """Build a store from a URL such as ``memory://``.

    Raises:
        ConfigurationError: the scheme is unknown (the message lists the known ones).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"store URL must be a str, got {type(url).__name__}")
    scheme = urlsplit(url).scheme.lower()
    factory = _SCHEMES.get(scheme)
    if factory is None:
        known = ", ".join(f"{name}://" for name in sorted(_SCHEMES))
        raise ConfigurationError(f"unknown store URL scheme {scheme!r}; known: {known}")
    return factory(url)
