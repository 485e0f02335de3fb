"""Isolation: a token is never served for another client, scope set, audience, resource
or namespace, whatever mix of configurations shares one store.

Hypothesis draws 2–6 configurations; one TokenManager per configuration, all on one
store (memory, file or a real redis-server), ask in an interleaved order, twice. Every
token must carry its own configuration's claims (the dev server puts ``client_id``,
``scope`` and ``aud`` in each JWT), and two different configurations never get the
same token (a namespace changes nothing in the token, so only this can tell).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import IdpFactory, manager_for
from redis_server import RedisServer
from tokenfleet import FileStore, MemoryStore, RedisStore, TokenManager
from tokenfleet.stores import TokenStore
from tokenfleet.testing import DevAuthServer

CLIENTS = {"svc-a": "secret-a-" + "x" * 20, "svc-b": "secret-b-" + "y" * 20}


class Config(NamedTuple):
    client: str
    scopes: frozenset[str]
    audience: str | None
    resource: str | None
    namespace: str | None
    order: tuple[str, ...]  # the order the scopes are passed in (must not matter)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    scopes = draw(st.lists(st.sampled_from(["read", "write", "admin"]), unique=True))
    return Config(
        client=draw(st.sampled_from(sorted(CLIENTS))),
        scopes=frozenset(scopes),
        audience=draw(st.sampled_from([None, "https://api-1.example", "https://api-2.example"])),
        resource=draw(st.sampled_from([None, "https://res-1.example", "https://res-2.example"])),
        namespace=draw(st.sampled_from([None, "ns1", "ns2"])),
        order=tuple(draw(st.permutations(scopes))),
    )


@pytest.fixture(scope="module")
def idp(module_idp_factory: IdpFactory) -> DevAuthServer:
    server = module_idp_factory(token_lifetime=300)
    for client_id, secret in CLIENTS.items():
        server.register_client(client_id, secret)
    return server


def config_manager(idp: DevAuthServer, config: Config, store: TokenStore) -> TokenManager:
    """The manager of one configuration: its own client, audience, resource, namespace."""
    client = {
        "client_id": config.client,
        "client_secret": CLIENTS[config.client],
        "audience": config.audience,
        "resource": config.resource,
    }
    return manager_for(idp, store, client=client, namespace=config.namespace, close_store=False)


def expected_audience(idp: DevAuthServer, config: Config) -> str:
    return config.audience or config.resource or idp.resource_url


async def exercise(idp: DevAuthServer, configs: list[Config], store: TokenStore) -> None:
    managers = [config_manager(idp, config, store) for config in configs]
    served: dict[str, Config] = {}
    try:
        for _ in range(2):
            for config, manager in zip(configs, managers, strict=True):
                token = await manager.get_token(list(config.order))
                claims = token.claims
                assert claims is not None
                assert claims.client_id == config.client
                assert set(claims.scopes) == config.scopes
                assert claims.aud == expected_audience(idp, config)
                first = served.setdefault(token.access_token, config)
                assert first._replace(order=()) == config._replace(order=()), (first, config)
    finally:
        await asyncio.gather(*(manager.aclose() for manager in managers))
        await store.aclose()


_settings = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
_configs = st.lists(configs(), min_size=2, max_size=6)


@pytest.mark.parametrize(
    "kind", ["memory", "file", pytest.param("redis", marks=pytest.mark.redis)]
)
def test_tokens_never_cross_configurations(
    idp: DevAuthServer, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def new_store() -> TokenStore:
        if kind == "memory":
            return MemoryStore()
        if kind == "file":
            return FileStore(tempfile.mkdtemp(dir=tmp_path))
        server: RedisServer = request.getfixturevalue("redis_server")
        server.start()
        return RedisStore(server.url, prefix=f"iso-{uuid.uuid4().hex[:8]}")

    @_settings
    @given(_configs)
    def check(drawn: list[Config]) -> None:
        async def run() -> None:
            async with asyncio.timeout(30):
                await exercise(idp, drawn, new_store())

        asyncio.run(run())

    check()


def test_the_manager_cache_key_separates_every_dimension(idp: DevAuthServer) -> None:
    """Every dimension alone changes the cache key (the property test's premise)."""
    base = Config("svc-a", frozenset({"read"}), None, None, None, ("read",))
    variants: list[Any] = [
        base._replace(client="svc-b"),
        base._replace(scopes=frozenset({"read", "write"}), order=("read", "write")),
        base._replace(audience="https://api-1.example"),
        base._replace(resource="https://res-1.example"),
        base._replace(namespace="ns1"),
    ]
    store = MemoryStore()
    keys = {
        config_manager(idp, config, store).cache_key(list(config.order))
        for config in [base, *variants]
    }
    assert len(keys) == 1 + len(variants)
