"""What ``TokenManager.from_env`` builds: the client and the store that the ``TOKENFLEET_*``
variables name (the same settings as the ``tokenfleet`` CLI, see ``_client/env.py``)."""

from __future__ import annotations

from collections.abc import Mapping

from .._client.credentials import ClientCredentials
from .._client.env import client_kwargs, read_settings
from ..stores import TokenStore, store_from_url

__all__ = ["client_and_store"]


def client_and_store(
    prefix: str, env: Mapping[str, str] | None
) -> tuple[ClientCredentials, TokenStore | None]:
    """The client of ``{prefix}*`` and the store of ``{prefix}STORE`` (None: unset)."""
    settings = read_settings(env, prefix=prefix)
    client = ClientCredentials(**client_kwargs(settings))
    store = store_from_url(settings.store) if settings.store else None
    return client, store
