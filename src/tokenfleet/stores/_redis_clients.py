"""Redis clients from URLs (one primary, a Sentinel group, or a Cluster), and checks of
the clients RedisStore is given.

Forms (``rediss`` in place of ``redis`` means TLS, with the server's hostname verified)::

    redis://[[user]:password@]host[:6379][/db][?option=value...]
    unix://[[user]:password@]/path/to/redis.sock[?db=0&option=value...]
    redis+sentinel://[[user]:password@]host[:26379][,host[:26379]...]/service_name[/db][?...]
    redis+cluster://[[user]:password@]host[:6379][,host[:6379]...][?...]

The password in the userinfo is the data nodes' (the primary's and replicas'); sentinels
that need their own give ``?sentinel_username=...&sentinel_password=...``. Options are
redis-py's connection options (``socket_timeout``, ``ssl_ca_certs``, ...); an option
redis-py would only reject at the first command (such as ``service_name``, which plain
``redis://`` cannot use) is refused here, when the store is made.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    URL_QUERY_ARGUMENT_PARSERS,
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from .._exceptions import ConfigurationError

__all__ = [
    "CLUSTER_NODE",
    "SENTINEL",
    "check_client",
    "client_from_url",
    "connection_kwargs",
    "is_plain",
    "wrong_mode",
]

_SENTINEL_PORT, _REDIS_PORT = 26379, 6379
_SENTINEL_ONLY = ("sentinel_username", "sentinel_password")
_POOL_OPTIONS = frozenset({"max_connections"})
AnyRedis = aioredis.Redis | RedisCluster


def _defaults() -> dict[str, Any]:
    """Fail fast when Redis is down (query options override)."""
    return {
        "socket_timeout": 2.0,
        "socket_connect_timeout": 1.0,
        # One quick retry heals a pooled connection a Redis restart broke; more would
        # only delay the fail-open fetch while Redis is down.
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
        **_NO_CLIENT_SETINFO,
    }


# No CLIENT SETINFO on connect: two round trips per connection, and redis-py 8 looks its
# own version up in the package metadata for each one (~8 ms of CPU per connection, which
# a fleet of fresh processes pays all at once). redis-py 8 names it ``driver_info``.
_NO_CLIENT_SETINFO: dict[str, Any] = (
    {"driver_info": None}
    if importlib.util.find_spec("redis.driver_info") is not None
    else {"lib_name": None, "lib_version": None}
)


def client_from_url(url: str, where: str) -> tuple[AnyRedis, list[aioredis.Redis]]:
    """A client for ``url``, and the Sentinel's own clients to close with it."""
    scheme = urlsplit(url).scheme.lower()
    try:
        if scheme.endswith("+sentinel"):
            return _sentinel(url, where)
        if scheme.endswith("+cluster"):
            return _cluster(url, where), []
        return _plain(url, where), []
    except (ValueError, RedisError, RedisClusterException) as exc:  # redis-py's own checks
        raise ConfigurationError(f"invalid Redis URL {where}: {exc}") from None


def _plain(url: str, where: str) -> aioredis.Redis:
    parts = urlsplit(url)
    connection = {"rediss": SSLConnection, "unix": UnixDomainSocketConnection}.get(
        parts.scheme.lower(), Connection
    )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "service_name" in query:
        raise ConfigurationError(
            f"Redis URL {where}: service_name is a Sentinel setting that redis:// cannot "
            "use; write redis+sentinel://sentinel1:26379,sentinel2:26379/<service_name>/0"
        )
    _check_options(query, connection, where, extra=frozenset({"db", "username", "password"}))
    kwargs = _defaults()
    if connection is SSLConnection:
        kwargs.update(_tls_defaults(query))
    return aioredis.from_url(url, **kwargs)


def _sentinel(url: str, where: str) -> tuple[aioredis.Redis, list[aioredis.Redis]]:
    parts = urlsplit(url)
    tls = parts.scheme.lower().startswith("rediss")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if not segments or len(segments) > 2:
        raise ConfigurationError(
            f"Redis URL {where} must name the service the sentinels monitor: "
            "redis+sentinel://host:26379,host:26380/<service_name>[/<db>]"
        )
    service, db = segments[0], _db(segments[1:], where)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    connection = SSLConnection if tls else Connection
    _check_options(query, connection, where, extra=frozenset(_SENTINEL_ONLY))
    options = _typed(query)
    sentinel_kwargs = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
    sentinel_kwargs.update({k: v for k, v in options.items() if k.startswith(("socket_", "ssl"))})
    for name in _SENTINEL_ONLY:
        if name in options:
            sentinel_kwargs[name.removeprefix("sentinel_")] = options.pop(name)
    kwargs = {**_defaults(), **options, **_userinfo(parts)}
    if tls:
        tls_kwargs = {"ssl": True, **_tls_defaults(query)}
        kwargs.update(tls_kwargs)
        sentinel_kwargs.update(tls_kwargs)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        _hosts(parts.netloc, _SENTINEL_PORT, where), sentinel_kwargs=sentinel_kwargs
    )
    client = sentinel.master_for(service, db=db, **kwargs)
    return client, list(sentinel.sentinels)


def _cluster(url: str, where: str) -> RedisCluster:
    parts = urlsplit(url)
    tls = parts.scheme.lower().startswith("rediss")
    if _db([unquote(s) for s in parts.path.split("/") if s], where) != 0:
        raise ConfigurationError(
            f"Redis URL {where}: a Redis Cluster has only database 0; drop the path"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    _check_options(query, SSLConnection if tls else Connection, where, extra=frozenset())
    kwargs = {**_defaults(), **_typed(query), **_userinfo(parts)}
    kwargs.pop("retry")  # RedisCluster retries by itself, across the topology
    if tls:
        kwargs.update({"ssl": True, **_tls_defaults(query)})
    nodes = [ClusterNode(host, port) for host, port in _hosts(parts.netloc, _REDIS_PORT, where)]
    return RedisCluster(startup_nodes=nodes, **kwargs)


def _tls_defaults(query: dict[str, str]) -> dict[str, Any]:
    # Verify the server's name whatever redis-py's default is (5.x did not): the
    # certificate alone, without the name, would let any holder of a CA-signed
    # certificate stand in for the server.
    return {} if "ssl_check_hostname" in query else {"ssl_check_hostname": True}


def _check_options(
    query: dict[str, str], connection: type[AbstractConnection], where: str, extra: frozenset[str]
) -> None:
    known = _connection_options(connection) | _POOL_OPTIONS | extra
    unknown = sorted(set(query) - known)
    if unknown:
        raise ConfigurationError(
            f"Redis URL {where}: unknown option(s) {', '.join(unknown)}; this URL form takes "
            "redis-py connection options such as socket_timeout, socket_connect_timeout, "
            "client_name, ssl_ca_certs"
        )


def _connection_options(connection: type[AbstractConnection]) -> frozenset[str]:
    """The keyword arguments ``connection`` (and its bases) accept."""
    names: set[str] = set()
    for cls in connection.__mro__:
        init = cls.__dict__.get("__init__")
        if init is not None:
            names.update(
                name
                for name, p in inspect.signature(init).parameters.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "self"
            )
    return frozenset(names)


def _typed(query: dict[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in query.items():
        parser = URL_QUERY_ARGUMENT_PARSERS.get(name)
        try:
            options[name] = parser(value) if parser else value
        except (TypeError, ValueError):
            raise ConfigurationError(f"Redis URL option {name} has an invalid value") from None
    return options


def _userinfo(parts: Any) -> dict[str, str]:
    userinfo = parts.netloc.rpartition("@")[0]
    if not userinfo:
        return {}
    user, _, password = userinfo.partition(":")
    found = {"username": unquote(user), "password": unquote(password)}
    return {k: v for k, v in found.items() if v}


def _hosts(netloc: str, default_port: int, where: str) -> list[tuple[str, int]]:
    hosts: list[tuple[str, int]] = []
    for item in netloc.rpartition("@")[2].split(","):
        try:
            address = urlsplit(f"//{item}")
            host, port = address.hostname, address.port or default_port
        except ValueError:
            host = None
        if not host:
            raise ConfigurationError(
                f"Redis URL {where}: {item!r} is not host[:port] (list hosts with commas)"
            )
        hosts.append((host, port))
    return hosts


def _db(segments: list[str], where: str) -> int:
    if not segments:
        return 0
    try:
        return int(segments[0])
    except ValueError:
        raise ConfigurationError(
            f"Redis URL {where}: the database must be a number, got {segments[0]!r}"
        ) from None


CLUSTER_NODE = (
    "Redis store {where} is a Redis Cluster node: a redis:// URL would reach only its "
    "slots; use redis+cluster://host:port[,host:port...] (or pass a "
    "redis.asyncio.RedisCluster client)"
)
SENTINEL = (
    "Redis store {where} is a Redis Sentinel, not a data node; use "
    "redis+sentinel://host:26379[,host:26379...]/<service_name>/0 (or pass "
    "Sentinel(...).master_for(<service_name>))"
)


def is_plain(client: AnyRedis) -> bool:
    """A client of one fixed server (not a cluster's, not a sentinel-managed one)."""
    pool = getattr(client, "connection_pool", None)
    return isinstance(client, aioredis.Redis) and not isinstance(pool, SentinelConnectionPool)


def connection_kwargs(client: AnyRedis) -> dict[str, Any]:
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or getattr(client, "connection_kwargs", {})
    return kwargs if isinstance(kwargs, dict) else {}


async def wrong_mode(client: AnyRedis, where: str) -> str | None:
    """Why ``client``'s server cannot be used as one primary (``INFO server``), or None."""
    try:
        info = await client.info("server")
    except ResponseError:  # INFO renamed or refused (some proxies): trust the user
        return None
    mode = info.get("redis_mode", "standalone")
    if mode == "cluster":
        return CLUSTER_NODE.format(where=where)
    if mode == "sentinel":
        return SENTINEL.format(where=where)
    return None


def check_client(client: AnyRedis) -> None:
    """Refuse a client RedisStore cannot work with."""
    if connection_kwargs(client).get("decode_responses"):
        raise ConfigurationError(
            "RedisStore stores binary values: give it a client made without "
            "decode_responses=True (or a URL, and it makes its own)"
        )
    if isinstance(client, RedisCluster) and not hasattr(client, "pubsub"):
        raise ConfigurationError(
            "RedisStore on a Redis Cluster needs redis-py >= 8.0 (the first with pub/sub "
            "on redis.asyncio.RedisCluster): pip install -U 'redis>=8'"
        )
