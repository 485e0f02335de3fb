"""Plain helpers shared by the tests: tokens, clients, managers, keys and raw store bytes.

The fixtures that start servers live in tests/conftest.py; these are ordinary functions,
so module-level helpers and hypothesis tests can call them too. Each takes the per-test
settings as arguments (a retry policy, a timeout, a lifetime): the defaults are the
library's own, and a test that depends on a particular setting says so at the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tokenfleet import ClientCredentials, Token, TokenManager
from tokenfleet.stores import FileStore, FleetStore, RedisStore, TokenStore
from tokenfleet.testing import DevAuthServer

# what tokenfleet_server_factory (the package's plugin) and module_idp_factory return
IdpFactory = Callable[..., DevAuthServer]


def make_token(access: str = "access-1", lifetime: float = 60.0, **fields: Any) -> Token:
    """A token issued now, valid for ``lifetime`` seconds; ``fields`` override any field."""
    now = time.time()
    values: dict[str, Any] = {
        "access_token": access,
        "expires_at": now + lifetime,
        "issued_at": now,
        "scopes": ("a",),
    }
    return Token(**{**values, **fields})


def client_for(idp: DevAuthServer, **overrides: Any) -> ClientCredentials:
    """``ClientCredentials`` for ``idp``'s default client; ``overrides`` win.

    With ``issuer=...`` the token endpoint is discovered (RFC 8414) instead of given.
    """
    args: dict[str, Any] = {"client_id": idp.client_id, "client_secret": idp.client_secret}
    token_url = None if "issuer" in overrides else idp.token_url
    return ClientCredentials(token_url, **{**args, **overrides})


def manager_for(
    idp: DevAuthServer,
    store: TokenStore | None = None,
    *,
    client: Mapping[str, Any] | None = None,
    **manager_kw: Any,
) -> TokenManager:
    """A ``TokenManager`` over :func:`client_for` (``client`` holds its overrides, such as
    ``retry`` and ``timeout``); ``manager_kw`` go to the manager."""
    return TokenManager(client_for(idp, **(client or {})), store=store, **manager_kw)


def pem_pair(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    """The private key (unencrypted PKCS#8) and its public key, both PEM."""
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


# What a shared store holds, byte for byte: these reach past the store's API on purpose,
# so a test can inspect or forge an entry as another process (or an attacker) would.


async def read_raw(store: FleetStore, key: str) -> bytes:
    """The bytes stored under ``key`` in a FileStore or RedisStore."""
    if isinstance(store, FileStore):
        return store._file(key, ".tok").read_bytes()
    assert isinstance(store, RedisStore)
    value = await store._client.get(store._key(key))
    assert isinstance(value, bytes)
    return value


async def write_raw(store: FleetStore, key: str, data: bytes) -> None:
    """Store ``data`` under ``key`` as is, bypassing the codec."""
    if isinstance(store, FileStore):
        store._file(key, ".tok").write_bytes(data)
    else:
        assert isinstance(store, RedisStore)
        await store._client.set(store._key(key), data)
