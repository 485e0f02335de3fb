"""Token stores: the ``TokenStore`` protocol, the built-in backends and ``store_from_url``.

Constructors are the main API (``MemoryStore()``, ``FileStore(path)``,
``RedisStore(client_or_url)``); ``store_from_url`` is a thin registry for configuration
from a CLI flag or an environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .._exceptions import ConfigurationError
from ._crypto import AesGcmCipher as AesGcmCipher
from ._protocol import FleetStore as FleetStore
from ._protocol import TokenStore as TokenStore
from ._protocol import WaitingStore as WaitingStore
from .file import FileStore as FileStore
from .memory import MemoryStore as MemoryStore

if TYPE_CHECKING:
    from .redis import RedisStore as RedisStore

__all__ = [
    "AesGcmCipher",
    "FileStore",
    "FleetStore",
    "MemoryStore",
    "RedisStore",
    "TokenStore",
    "WaitingStore",
    "store_from_url",
]


def __getattr__(name: str) -> Any:
    # redis-py is the optional extra tokenfleet[redis]: import it only when asked for.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _memory(url: str) -> TokenStore:
    return MemoryStore()


def _file(url: str) -> TokenStore:
    """``file:///abs/path``, ``file://~/path`` (home directory), ``file://`` (default)."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc == "~" or parts.netloc.startswith("~"):
        return FileStore(os.path.expanduser(parts.netloc + path))
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"file store URL {url!r} names host {parts.netloc!r}; use file:///absolute/path"
        )
    return FileStore(path or None)


def _redis(url: str) -> TokenStore:
    """One primary, a Sentinel group or a Cluster: see ``stores/_redis_urls.py``."""
    from .redis import RedisStore

    return RedisStore(url)


_SCHEMES: dict[str, Callable[[str], TokenStore]] = {
    "file": _file,
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
    "unix": _redis,
    "redis+sentinel": _redis,
    "rediss+sentinel": _redis,
    "redis+cluster": _redis,
    "rediss+cluster": _redis,
}


def store_from_url(url: str) -> TokenStore:
    """Build a store from a URL: ``memory://``, ``file:///path``, ``redis://host:6379/0``,
    ``redis+sentinel://host:26379,host:26380/mymaster/0``, ``redis+cluster://host:7000,host:7001``
    (``rediss`` for TLS), ...

    Raises:
        ConfigurationError: the scheme is unknown (the message lists the known ones).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"store URL must be a str, got {type(url).__name__}")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise ConfigurationError(f"invalid store URL: {exc}") from None  # may hold a password
    factory = _SCHEMES.get(scheme)
    if factory is None:
        known = ", ".join(f"{name}://" for name in sorted(_SCHEMES))
        raise ConfigurationError(f"unknown store URL scheme {scheme!r}; known: {known}")
    return factory(url)
