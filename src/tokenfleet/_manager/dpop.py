"""DPoP tokens and shared stores: the key must travel sealed, or not at all.

A DPoP-bound token (RFC 9449) is only usable with its private key, so a shared store
keeps the key with the token, sealed by the store's cipher (see ``stores._codec``). A
shared store without a cipher cannot do that safely: rather than fail every request, the
manager keeps DPoP tokens per process (one token request per process and lifetime, not
per fleet) and says so once, as a WARNING naming the fix.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager

from .._jwt.dpop_key import DPoPKey
from .._models import Token
from ..stores import MemoryStore, TokenStore

__all__ = ["PerProcessStore", "store_for"]

logger = logging.getLogger("tokenfleet")


def store_for(source: object, store: TokenStore) -> TokenStore:
    """``store``, or a per-process stand-in when it cannot hold ``source``'s DPoP keys."""
    if not isinstance(getattr(source, "dpop", None), DPoPKey):
        return store
    if getattr(store, "holds_dpop_keys", False):
        return store
    logger.warning(
        "tokenfleet: %r has no cipher, and DPoP tokens are useless without their private "
        "key, which must not lie in a shared store in clear: keeping DPoP tokens per "
        "process (one token request per process). Give the store a cipher, e.g. "
        "cipher=tokenfleet.AesGcmCipher.from_env(), to share them (docs/dpop.md)",
        store,
    )
    return PerProcessStore(store)


class PerProcessStore:
    """This process's memory for tokens; the shared store is only closed with it."""

    holds_dpop_keys = True

    def __init__(self, shared: TokenStore) -> None:
        self.shared = shared
        self._memory = MemoryStore()

    async def get(self, key: str) -> Token | None:
        """See ``TokenStore.get``."""
        return await self._memory.get(key)

    async def set(self, key: str, token: Token, ttl: float) -> None:
        """See ``TokenStore.set``."""
        await self._memory.set(key, token, ttl)

    async def delete(self, key: str, token: Token | None = None) -> bool:
        """See ``TokenStore.delete``."""
        return await self._memory.delete(key, token)

    def lock(self, key: str, timeout: float) -> AbstractAsyncContextManager[bool]:
        """See ``TokenStore.lock`` (a per-process lock)."""
        return self._memory.lock(key, timeout)

    async def aclose(self) -> None:
        """Close the shared store too (the manager owned it)."""
        await self._memory.aclose()
        await self.shared.aclose()

    def __repr__(self) -> str:
        return f"PerProcessStore(shared={self.shared!r})"
