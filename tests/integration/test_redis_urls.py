"""Redis store URLs: every URL the store accepts works, or is refused when the store is made.

Also: TLS verifies the server's hostname, keys do not repeat the prefix, and redis-py is
an optional extra.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from helpers import client_for
from redis_topologies import Cluster, SentinelGroup
from tokenfleet import (
    ConfigurationError,
    RedisStore,
    TokenManager,
    store_from_url,
)
from tokenfleet.testing import DevAuthServer


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("redis://127.0.0.1:1/0?service_name=mymaster", "redis+sentinel://"),
        ("redis://127.0.0.1:1/0?no_such_option=1", "no_such_option"),
        ("redis+sentinel://127.0.0.1:1", "<service_name>"),
        ("redis+sentinel://127.0.0.1:1/mymaster/zero", "number"),
        ("redis+sentinel://127.0.0.1:1/mymaster/0?bogus=1", "bogus"),
        ("redis+cluster://127.0.0.1:1/3", "only database 0"),
        ("redis+cluster://127.0.0.1:1?db=1", "0"),
        ("redis+cluster://127.0.0.1:1,:2", "host[:port]"),
        ("redis+cluster://127.0.0.1:1?socket_timeout=soon", "socket_timeout"),
    ],
)
def test_a_redis_url_that_cannot_work_is_refused_when_the_store_is_made(
    url: str, names: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        store_from_url(url)
    assert names in str(error.value)


@pytest.mark.redis
async def test_redis_url_options_that_are_accepted_work(redis_url: str) -> None:
    url = redis_url + "?socket_timeout=1&client_name=tf&max_connections=4&health_check_interval=5"
    store = store_from_url(url)
    try:
        assert await store.get("k") is None
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_a_redis_url_pointed_at_a_cluster_node_says_so(redis_cluster: Cluster) -> None:
    store = store_from_url(f"redis://127.0.0.1:{redis_cluster.ports[0]}/0")
    try:
        for _ in range(2):  # every call, not only the first
            with pytest.raises(ConfigurationError, match=r"redis\+cluster://"):
                await store.get("k")
        async with DevAuthServer() as idp:
            manager = TokenManager(client_for(idp), store=store, close_store=False)
            async with manager:  # not a silent fail-open: the caller is told
                with pytest.raises(ConfigurationError, match="Cluster node"):
                    await manager.get_token()
            assert idp.token_requests() == 0
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_a_redis_url_pointed_at_a_sentinel_says_so(redis_sentinel: SentinelGroup) -> None:
    store = store_from_url(f"redis://127.0.0.1:{redis_sentinel.sentinels[0].port}/0")
    try:
        with pytest.raises(ConfigurationError, match=r"redis\+sentinel://"):
            await store.set_cooldown("k", 2e9, "x")
    finally:
        await store.aclose()


def _ssl_kwargs(store: RedisStore) -> list[dict[str, object]]:
    client = store._client
    if isinstance(client, RedisCluster):
        return [client.connection_kwargs]
    kwargs = [client.connection_pool.connection_kwargs]
    return kwargs + [s.connection_pool.connection_kwargs for s in store._sentinels]


@pytest.mark.parametrize(
    "url",
    [
        "rediss://redis.example:6380/0",
        "rediss+sentinel://s1.example:26379,s2.example:26379/mymaster/0",
        "rediss+cluster://n1.example:7000,n2.example:7001",
    ],
)
async def test_tls_urls_verify_the_servers_hostname(url: str) -> None:
    store = store_from_url(url)
    assert isinstance(store, RedisStore)
    try:
        for kwargs in _ssl_kwargs(store):
            assert kwargs["ssl_check_hostname"] is True, kwargs
    finally:
        await store.aclose()
    relaxed = store_from_url(url + "?ssl_check_hostname=false")  # the user's explicit choice
    assert isinstance(relaxed, RedisStore)
    try:
        assert all(k["ssl_check_hostname"] is False for k in _ssl_kwargs(relaxed))
    finally:
        await relaxed.aclose()


@pytest.mark.redis
async def test_redis_keys_name_the_prefix_once(redis_url: str) -> None:
    async with DevAuthServer() as idp, aioredis.Redis.from_url(redis_url) as admin:
        async with TokenManager(client_for(idp), store=RedisStore(redis_url)) as manager:
            await manager.get_token()
            keys = [k.decode() for k in await admin.keys("*")]
        assert len(keys) == 1
        assert keys[0].startswith("tokenfleet:{v1:"), keys
        assert keys[0].count("tokenfleet") == 1, keys


def test_tokenfleet_imports_without_redis_and_redis_store_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import tokenfleet, tokenfleet.stores\n"
        "assert tokenfleet.store_from_url('memory://') is not None\n"
        "for use in (lambda: tokenfleet.RedisStore,\n"
        "            lambda: tokenfleet.stores.RedisStore,\n"
        "            lambda: tokenfleet.store_from_url('redis://127.0.0.1:1/0')):\n"
        "    try:\n"
        "        use()\n"
        "    except ImportError as exc:\n"
        "        assert 'pip install tokenfleet[redis]' in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError('no ImportError')\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
