"""The checks that do not need a token: discovery, TLS, store."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from urllib.parse import urlsplit

from .._client.credentials import ClientCredentials
from .._client.discovery import check_auth_method, metadata_urls
from .._client.request import check_endpoint_url
from .._exceptions import (
    ConfigurationError,
    DiscoveryError,
    StoreError,
    TransportError,
    UnsupportedAuthMethod,
)
from .._util.redact import redact_url
from .._util.words import ago_or_in, latency
from ..stores import TokenStore, store_from_url
from .result import UNAVAILABLE, USAGE, CheckResult, failed, passed, skipped

__all__ = ["check_discovery", "check_store", "check_tls"]

_LOCK_WAIT = 5.0


async def check_discovery(client: ClientCredentials) -> tuple[CheckResult, str | None]:
    """The issuer's metadata, its token endpoint, and whether it lists our auth method."""
    name = "discovery"
    if client.issuer is None:
        return skipped(name, "no issuer given (TOKENFLEET_ISSUER); using the token URL"), None
    try:
        metadata = await client.metadata()
        check_auth_method(metadata, client.auth_method)
    except UnsupportedAuthMethod as exc:
        fix = "set TOKENFLEET_AUTH_METHOD to a method the server lists, or register this one"
        return failed(name, str(exc), fix, USAGE), None
    except (ConfigurationError, DiscoveryError, TransportError) as exc:
        fix = (
            "use the issuer exactly as the server names it (try: curl "
            f"{metadata_urls(client.issuer)[0]}), or set TOKENFLEET_TOKEN_URL instead"
        )
        code = UNAVAILABLE if isinstance(exc, TransportError) else USAGE
        return failed(name, str(exc), fix, code), None
    endpoint = client.token_url or metadata.token_endpoint
    detail = f"{metadata.url} -> token endpoint {endpoint}, {client.auth_method} supported"
    return passed(name, detail), endpoint


async def check_tls(client: ClientCredentials, token_url: str) -> CheckResult:
    """https? certificate trusted, for the right name, and how long it stays valid."""
    name = "TLS"
    try:
        check_endpoint_url(token_url)
    except ConfigurationError:
        return failed(
            name,
            f"{token_url} is plain http: the secret and the token would cross the network "
            "unencrypted",
            "use the https URL of the token endpoint",
            USAGE,
        )
    parts = urlsplit(token_url)
    if parts.scheme == "http":
        return passed(name, "plain http on loopback: fine for a dev server, use https elsewhere")
    return await _handshake(name, parts.hostname or "", parts.port or 443, client)


async def _handshake(name: str, host: str, port: int, client: ClientCredentials) -> CheckResult:
    given = client._ssl  # the client's own TLS settings: what its requests will use
    context = given if isinstance(given, ssl.SSLContext) else ssl.create_default_context()
    try:
        async with asyncio.timeout(client.timeout):
            _, writer = await asyncio.open_connection(host, port, ssl=context)
    except ssl.SSLCertVerificationError as exc:
        fix = (
            "if the server uses a private CA, pass --ca-file (TOKENFLEET_CA_FILE or "
            "SSL_CERT_FILE); if the name differs, use the name on its certificate"
        )
        return failed(
            name, f"certificate of {host} not accepted: {exc.verify_message}", fix, UNAVAILABLE
        )
    except (OSError, TimeoutError) as exc:
        fix = f"check the host name, DNS, and that this host may connect to {host}:{port}"
        return failed(
            name, f"cannot connect to {host}:{port} ({type(exc).__name__})", fix, UNAVAILABLE
        )
    cert = writer.get_extra_info("peercert") or {}
    version = writer.get_extra_info("ssl_object").version()
    writer.close()
    return passed(name, f"{version}, certificate of {host} trusted{_cert_expiry(cert)}")


def _cert_expiry(cert: dict[str, object]) -> str:
    not_after = cert.get("notAfter")
    if not isinstance(not_after, str):
        return ""
    left = ssl.cert_time_to_seconds(not_after) - time.time()
    return f", {ago_or_in(left, future='expires in', past='expired')}"


async def check_store(store: TokenStore | str | None) -> CheckResult:
    """The store answers, and its single-flight lock can be taken and given back.

    A URL is opened and closed here; a store object is probed and left open.
    """
    name = "store"
    if store is None:
        return skipped(name, "none (TOKENFLEET_STORE): each process caches on its own")
    if not isinstance(store, str):
        shown = type(store).__name__
        try:
            return await _probe_store(name, shown, store)
        except (StoreError, TimeoutError) as exc:
            detail = str(exc) or f"no answer within {_LOCK_WAIT * 2:g} s"
            fix = "check that the store's server is up and reachable from this host"
            return failed(name, f"{shown} unreachable: {detail}", fix, UNAVAILABLE)
    shown = redact_url(store)
    try:
        opened = store_from_url(store)
    except ConfigurationError as exc:
        return failed(name, str(exc), "fix the store URL or the directory's permissions", USAGE)
    except ImportError as exc:  # RedisStore without the redis extra
        return failed(name, str(exc), "pip install tokenfleet[redis]", USAGE)
    try:
        return await _probe_store(name, shown, opened)
    except ConfigurationError as exc:  # e.g. redis:// pointed at a Cluster node
        return failed(name, str(exc), "use the URL form the message names", USAGE)
    except (StoreError, TimeoutError) as exc:
        detail = str(exc) or f"no answer within {_LOCK_WAIT * 2:g} s"
        return failed(name, f"{shown} unreachable: {detail}", _store_fix(store), UNAVAILABLE)
    finally:
        await opened.aclose()


async def _probe_store(name: str, shown: str, store: TokenStore) -> CheckResult:
    key = f"tokenfleet-check:{uuid.uuid4().hex}"  # not a real key: no fleet waits on us
    started = time.perf_counter()
    async with asyncio.timeout(_LOCK_WAIT * 2):
        await store.get(key)
        async with store.lock(key, _LOCK_WAIT) as held:
            if not held:
                fix = "another process holds a lock it should not: check the store"
                return failed(
                    name, f"{shown}: lock not acquired in {_LOCK_WAIT:g} s", fix, UNAVAILABLE
                )
    took = latency(time.perf_counter() - started)
    return passed(name, f"{shown} reachable; lock acquired and released ({took})")


def _store_fix(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme == "file":
        return "the directory must exist or be creatable, owned by this user, mode 0700"
    if "+" in scheme:  # redis+sentinel://, redis+cluster://: redis-cli takes one host
        return "are the listed hosts up and reachable? try: redis-cli -h <host> -p <port> ping"
    return f"is Redis up and reachable? try: redis-cli -u '{redact_url(url)}' ping"
