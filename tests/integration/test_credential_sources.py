"""Credentials that rotate and credentials with no static secret, against the dev server.

Real files in the three layouts a rotation takes on disk (Kubernetes' ``..data`` symlink
swap, an in-place rewrite, a rename over the path), real keys and certificates.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import tokenfleet
from helpers import pem_pair
from tokenfleet import (
    AssertionFile,
    ClientCredentials,
    CredentialError,
    FileStore,
    InvalidClient,
    KeyFile,
    SecretFile,
    TokenManager,
)
from tokenfleet.testing import (
    DevAuthServer,
    ProjectedVolume,
    TestPKI,
    TokenRotator,
    WorkloadIssuer,
    make_test_pki,
)

CLIENT = "rotating"


@pytest.fixture
def idp(idp: DevAuthServer) -> DevAuthServer:
    """The shared dev server, with a client whose secret the tests rotate."""
    idp.register_client(CLIENT, "secret-v1")
    return idp


def write_kubernetes(directory: Path, name: str, data: str | bytes) -> Path:
    ProjectedVolume(directory).write({name: data})
    return directory / name


def write_in_place(directory: Path, name: str, data: str | bytes) -> Path:
    path = directory / name
    with path.open("wb") as file:  # same inode, new content
        file.write(data.encode() if isinstance(data, str) else data)
    return path


def write_by_rename(directory: Path, name: str, data: str | bytes) -> Path:
    path = directory / name
    temporary = directory / f".{name}.tmp"
    temporary.write_bytes(data.encode() if isinstance(data, str) else data)
    temporary.replace(path)  # a new inode under the same name
    return path


LAYOUTS: dict[str, Callable[[Path, str, str | bytes], Path]] = {
    "kubernetes": write_kubernetes,
    "in_place": write_in_place,
    "rename": write_by_rename,
}


def new_pem_pair() -> tuple[bytes, bytes]:
    return pem_pair(ec.generate_private_key(ec.SECP256R1()))


# --------------------------------------------------------------------------- SecretFile


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
async def test_a_secret_rotated_on_disk_is_used_by_the_next_fetch(
    idp: DevAuthServer, tmp_path: Path, layout: str
) -> None:
    write = LAYOUTS[layout]
    path = write(tmp_path, "client-secret", "secret-v1\n")
    lstat_before = os.lstat(path)
    async with ClientCredentials(
        idp.token_url, client_id=CLIENT, client_secret=SecretFile(path)
    ) as client:
        await client.fetch_token()
        idp.rotate_client_secret(CLIENT, "secret-v2-longer")
        write(tmp_path, "client-secret", "secret-v2-longer\n")
        await client.fetch_token()
    # No invalid_client on the way: the stat before the second fetch saw the change.
    assert idp.token_requests(CLIENT) == idp.issued_tokens(CLIENT) == 2
    if layout == "kubernetes":  # the visible path itself did not change at all
        assert os.lstat(path).st_mtime_ns == lstat_before.st_mtime_ns


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_jwt"])
async def test_a_rotated_secret_file_works_for_every_secret_method(
    idp: DevAuthServer, tmp_path: Path, method: str
) -> None:
    long_1, long_2 = "v1-" + "a" * 61, "v2-" + "b" * 61  # HS256 wants >= 32 bytes
    idp.register_client(CLIENT, long_1, auth_methods=[method])
    volume = ProjectedVolume(tmp_path)
    volume.write({"client-secret": long_1 + "\n"})
    async with ClientCredentials(
        idp.token_url,
        client_id=CLIENT,
        client_secret=SecretFile(volume.path("client-secret")),
        auth_method=method,  # type: ignore[arg-type]
    ) as client:
        await client.fetch_token()
        idp.rotate_client_secret(CLIENT, long_2)
        volume.write({"client-secret": long_2 + "\n"})
        await client.fetch_token()
    assert idp.token_requests(CLIENT) == idp.issued_tokens(CLIENT) == 2


async def test_the_cached_path_never_touches_the_credential_file(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    path = write_by_rename(tmp_path, "client-secret", "secret-v1")
    client = ClientCredentials(idp.token_url, client_id=CLIENT, client_secret=SecretFile(path))
    async with TokenManager(client) as tokens:
        first = await tokens.get_token()
        path.unlink()  # a stat or a read from now on would raise CredentialError
        for _ in range(1000):
            assert await tokens.get_token() is first
        with pytest.raises(CredentialError, match="does not exist"):
            await client.fetch_token()  # the next fetch does look, and says what is wrong
    assert idp.token_requests(CLIENT) == 1


async def test_a_rotation_racing_the_request_costs_one_retry_not_an_error(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    volume = ProjectedVolume(tmp_path)
    volume.write({"client-secret": "secret-v1"})
    idp.latency = 0.3  # the request is in flight while the secret rotates

    async def rotate_meanwhile() -> None:
        await asyncio.sleep(0.1)
        idp.rotate_client_secret(CLIENT, "secret-v2")
        volume.write({"client-secret": "secret-v2"})

    client = ClientCredentials(
        idp.token_url, client_id=CLIENT, client_secret=SecretFile(volume.path("client-secret"))
    )
    async with TokenManager(client, store=FileStore(tmp_path / "store")) as tokens:
        token, _ = await asyncio.gather(tokens.get_token(), rotate_meanwhile())
        assert token.access_token
        # invalid_client was answered and retried inside the fetch: no fleet cooldown.
        assert await tokens.store.get_cooldown(tokens.cache_key()) is None  # type: ignore[attr-defined]
        assert tokens.stats.fetch_errors == 0
    assert idp.token_requests(CLIENT) == 2 and idp.issued_tokens(CLIENT) == 1


async def test_invalid_client_with_an_unchanged_secret_is_not_retried(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    path = write_by_rename(tmp_path, "client-secret", "wrong")
    async with ClientCredentials(
        idp.token_url, client_id=CLIENT, client_secret=SecretFile(path)
    ) as client:
        with pytest.raises(InvalidClient):
            await client.fetch_token()
    assert idp.token_requests(CLIENT) == 1


async def test_the_cache_key_does_not_change_with_the_secret(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    one = ClientCredentials(idp.token_url, client_id=CLIENT, client_secret="secret-v1")
    two = ClientCredentials(idp.token_url, client_id=CLIENT, client_secret="secret-v2")
    from_file = ClientCredentials(
        idp.token_url, client_id=CLIENT, client_secret=SecretFile(tmp_path / "s")
    )
    assert one.cache_key() == two.cache_key() == from_file.cache_key()


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "does not exist"), ("", "is empty"), ("\n", "is empty")],
)
async def test_a_missing_or_empty_secret_file_is_a_typed_error_naming_it(
    idp: DevAuthServer, tmp_path: Path, content: str | None, match: str
) -> None:
    path = tmp_path / "client-secret"
    if content is not None:
        path.write_text(content)
    async with ClientCredentials(
        idp.token_url, client_id=CLIENT, client_secret=SecretFile(path)
    ) as client:
        with pytest.raises(CredentialError, match=match) as info:
            await client.fetch_token()
    assert str(path) in str(info.value) and info.value.source == str(path)
    assert idp.token_requests() == 0


async def test_a_fifo_in_place_of_the_secret_is_refused_without_blocking(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    path = tmp_path / "client-secret"
    os.mkfifo(path)
    async with ClientCredentials(
        idp.token_url, client_id=CLIENT, client_secret=SecretFile(path)
    ) as client:
        with pytest.raises(CredentialError, match="not a regular file"):
            await asyncio.wait_for(client.fetch_token(), 5)


# --------------------------------------------------------------------------- callables


async def test_an_async_callable_secret_is_asked_again_after_invalid_client(
    idp: DevAuthServer,
) -> None:
    answers = ["secret-v1", "secret-v2"]
    calls = 0

    async def from_vault() -> str:
        nonlocal calls
        calls += 1
        return answers[min(calls, 2) - 1]

    idp.rotate_client_secret(CLIENT, "secret-v2")
    async with ClientCredentials(
        idp.token_url, client_id=CLIENT, client_secret=from_vault
    ) as client:
        await client.fetch_token()
    assert calls == 2 and idp.token_requests(CLIENT) == 2


@pytest.mark.parametrize("kind", ["raises", "returns an int"])
async def test_a_failing_callable_is_a_typed_error_without_its_content(
    idp: DevAuthServer, kind: str
) -> None:
    async def broken() -> str:
        if kind == "raises":
            raise RuntimeError("vault said: secret-v1 is sealed")
        return 42  # type: ignore[return-value]

    async with ClientCredentials(idp.token_url, client_id=CLIENT, client_secret=broken) as c:
        with pytest.raises(CredentialError, match="broken") as info:
            await c.fetch_token()
    assert "secret-v1" not in repr(info.value) and info.value.__cause__ is None
    assert info.value.__context__ is None
    assert idp.token_requests() == 0


# --------------------------------------------------------------------------- KeyFile


async def test_a_key_file_rotated_for_private_key_jwt(idp: DevAuthServer, tmp_path: Path) -> None:
    private_1, public_1 = new_pem_pair()
    private_2, public_2 = new_pem_pair()
    idp.register_client("pk", public_key=public_1, auth_methods=["private_key_jwt"])
    volume = ProjectedVolume(tmp_path)
    volume.write({"key.pem": private_1})
    async with ClientCredentials(
        idp.token_url, client_id="pk", private_key=KeyFile(volume.path("key.pem"))
    ) as client:
        assert client.auth_method == "private_key_jwt"  # implied by the key
        await client.fetch_token()
        idp.rotate_client_key("pk", public_2)
        volume.write({"key.pem": private_2})
        await client.fetch_token()
    assert idp.token_requests("pk") == idp.issued_tokens("pk") == 2


async def test_an_encrypted_key_file_and_a_wrong_password(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw-1"),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    idp.register_client("pk", public_key=public, auth_methods=["private_key_jwt"])
    path = tmp_path / "key.pem"
    path.write_bytes(encrypted)
    async with ClientCredentials(
        idp.token_url, client_id="pk", private_key=KeyFile(path, password="pw-1")
    ) as good:
        await good.fetch_token()
    async with ClientCredentials(
        idp.token_url, client_id="pk", private_key=KeyFile(path, password="nope")
    ) as bad:
        with pytest.raises(CredentialError, match=str(path)) as info:
            await bad.fetch_token()
    assert "nope" not in str(info.value)


# --------------------------------------------------------------------------- assertions


async def test_an_assertion_file_authenticates_a_federated_client(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    workload = WorkloadIssuer()
    subject = "system:serviceaccount:orders:api"
    idp.register_federated_client("orders-api", workload, subject, audience=idp.issuer)
    volume = ProjectedVolume(tmp_path)
    mint = lambda: workload.mint(subject, idp.issuer, lifetime=3600)  # noqa: E731
    with TokenRotator(volume, "token", mint, every=3600):
        async with ClientCredentials(
            idp.token_url,
            client_id="orders-api",
            client_assertion=AssertionFile(volume.path("token")),
        ) as client:
            token = await client.fetch_token()
    assert token.claims is not None and token.claims.sub == "orders-api"
    assert idp.assertion_rejections() == {}


async def test_an_expired_assertion_file_is_never_sent(idp: DevAuthServer, tmp_path: Path) -> None:
    workload = WorkloadIssuer()
    idp.register_federated_client("fed", workload, "sa", audience=idp.issuer)
    path = write_by_rename(tmp_path, "token", workload.mint("sa", idp.issuer, lifetime=-5))
    async with ClientCredentials(
        idp.token_url, client_id="fed", client_assertion=AssertionFile(path)
    ) as client:
        with pytest.raises(CredentialError, match="expired") as info:
            await client.fetch_token()
    message = str(info.value)
    assert str(path) in message and "kubelet" in message
    assert idp.token_requests() == 0


@pytest.mark.parametrize(
    ("content", "match"), [(None, "does not exist"), ("not-a-jwt", "not a JWT")]
)
async def test_a_missing_or_bad_assertion_file_is_a_typed_error(
    idp: DevAuthServer, tmp_path: Path, content: str | None, match: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    async with ClientCredentials(
        idp.token_url, client_id="fed", client_assertion=AssertionFile(path)
    ) as client:
        with pytest.raises(CredentialError, match=match):
            await client.fetch_token()


async def test_an_assertion_file_rewritten_by_the_kubelet_is_reread_before_it_expires(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    workload = WorkloadIssuer()
    idp.register_federated_client("fed", workload, "sa", audience=idp.issuer)
    volume = ProjectedVolume(tmp_path)
    mint = lambda: workload.mint("sa", idp.issuer, lifetime=1.5)  # noqa: E731
    source = AssertionFile(volume.path("token"))
    with TokenRotator(volume, "token", mint, every=0.5) as rotator:
        async with ClientCredentials(
            idp.token_url, client_id="fed", client_assertion=source
        ) as client:
            for _ in range(8):
                await client.fetch_token()
                await asyncio.sleep(0.25)
    assert rotator.writes >= 3
    assert idp.assertion_rejections() == {}
    assert idp.token_requests("fed") == idp.issued_tokens("fed") == 8


async def test_an_async_callable_assertion(idp: DevAuthServer) -> None:
    workload = WorkloadIssuer()
    idp.register_federated_client("fed", workload, "sa")

    async def token() -> str:
        return workload.mint("sa", idp.token_url, lifetime=60)

    async with ClientCredentials(idp.token_url, client_id="fed", client_assertion=token) as c:
        await c.fetch_token()
    assert idp.issued_tokens("fed") == 1


# --------------------------------------------------------------------------- audience


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, "issuer"), ("issuer", "issuer"), ("token_endpoint", "token_url")],
)
async def test_the_assertion_audience_is_the_issuer_when_known(
    idp: DevAuthServer, given: str | None, expected: str
) -> None:
    private, public = new_pem_pair()
    idp.register_client("pk", public_key=public, auth_methods=["private_key_jwt"])
    client = ClientCredentials(
        idp.token_url,
        issuer=idp.issuer,
        client_id="pk",
        private_key=private,
        assertion_audience=given,
    )
    form: list[tuple[str, str]] = []
    await client._auth.apply(form, {}, client._assertion_audience(idp.token_url))
    claims = jwt.decode(dict(form)["client_assertion"], options={"verify_signature": False})
    assert claims["aud"] == getattr(idp, expected)
    async with client:
        await client.fetch_token()  # the server accepts it


# --------------------------------------------------------------------------- mTLS


async def test_a_rotated_client_certificate_is_used_by_the_next_fetch(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki", client_cn="mtls-client")
    volume = ProjectedVolume(tmp_path / "tls")
    volume.write({"tls.crt": pki.client_cert.read_bytes(), "tls.key": pki.client_key.read_bytes()})
    async with DevAuthServer(ssl_context=pki.server_ssl_context) as idp:
        idp.register_client("mtls-client", auth_methods=["tls_client_auth"])
        client = ClientCredentials(
            idp.token_url,
            client_id="mtls-client",
            tls_client_cert=volume.path("tls.crt"),
            tls_client_key=volume.path("tls.key"),
            ssl_context=pki.client_context(with_certificate=False),
        )
        async with client:
            assert client.auth_method == "tls_client_auth"
            first_key = client.cache_key()
            await client.fetch_token()
            # The server now trusts only the new certificate: the old one is refused.
            cert, key = pki.issue_client_cert("mtls-client-2")
            idp.set_tls_client_cn("mtls-client", "mtls-client-2")
            volume.write({"tls.crt": cert, "tls.key": key})
            await client.fetch_token()
            assert client.cache_key() != first_key  # follows the certificate
        assert idp.token_requests("mtls-client") == idp.issued_tokens("mtls-client") == 2


async def test_a_running_manager_rekeys_when_its_client_certificate_rotates(
    tmp_path: Path,
) -> None:
    """RFC 8705 §3: a token may be bound to the certificate it was fetched with.

    Two managers share a store: A's certificate rotates, B (a process not rotated yet)
    still presents the old one and puts a token fetched with it in the store. A's next
    token must be one fetched with A's new certificate, under A's new cache key, never
    B's token from the old key.
    """
    pki = make_test_pki(tmp_path / "pki", client_cn="mtls-client")
    old = {"tls.crt": pki.client_cert.read_bytes(), "tls.key": pki.client_key.read_bytes()}
    volumes = [ProjectedVolume(tmp_path / name) for name in ("a", "b")]
    for volume in volumes:
        volume.write(old)
    store = tokenfleet.MemoryStore()
    async with DevAuthServer(ssl_context=pki.server_ssl_context) as idp:
        idp.register_client("mtls-client", auth_methods=["tls_client_auth"])
        clients = [
            ClientCredentials(
                idp.token_url,
                client_id="mtls-client",
                tls_client_cert=volume.path("tls.crt"),
                tls_client_key=volume.path("tls.key"),
                ssl_context=pki.client_context(with_certificate=False),
            )
            for volume in volumes
        ]
        a, b = (TokenManager(client, store, close_store=False) for client in clients)
        async with a, b:
            first = await a.get_token()
            assert await b.get_token() == first  # one identity, one shared token
            cert, key = pki.issue_client_cert("mtls-client-2")
            volumes[0].write({"tls.crt": cert, "tls.key": key})
            await a.invalidate()  # e.g. a resource server refused the bound token
            await b.invalidate(first)
            with_old_certificate = await b.get_token()
            # From now on the server accepts only A's new certificate.
            idp.set_tls_client_cn("mtls-client", "mtls-client-2")
            rotated = await a.get_token()
            assert rotated.fingerprint not in (first.fingerprint, with_old_certificate.fingerprint)
            assert idp.issued_tokens("mtls-client") == 3
            assert a.cache_key() == clients[0].cache_key() != clients[1].cache_key()
            assert await a.get_token() == rotated  # cached under the new key
        assert idp.token_requests("mtls-client") == 3
        await store.aclose()


def mtls_client(idp: DevAuthServer, pki: TestPKI, volume: ProjectedVolume) -> ClientCredentials:
    return ClientCredentials(
        idp.token_url,
        client_id="mtls-client",
        tls_client_cert=volume.path("tls.crt"),
        tls_client_key=volume.path("tls.key"),
        ssl_context=pki.client_context(with_certificate=False),
    )


async def test_a_refresh_after_a_certificate_rotation_is_made_under_the_new_key(
    tmp_path: Path,
) -> None:
    pki = make_test_pki(tmp_path / "pki", client_cn="mtls-client")
    volume = ProjectedVolume(tmp_path / "tls")
    volume.write({"tls.crt": pki.client_cert.read_bytes(), "tls.key": pki.client_key.read_bytes()})
    shift = [0.0]  # a clock we move past the refresh point (the token stays usable)
    async with DevAuthServer(ssl_context=pki.server_ssl_context) as idp:
        idp.register_client("mtls-client", auth_methods=["tls_client_auth"])
        client = mtls_client(idp, pki, volume)
        async with TokenManager(client, clock=lambda: time.time() + shift[0]) as manager:
            first = await manager.get_token()
            old_key = manager.cache_key()
            cert, key = pki.issue_client_cert("mtls-client-2")
            idp.set_tls_client_cn("mtls-client", "mtls-client-2")
            volume.write({"tls.crt": cert, "tls.key": key})
            assert await manager.get_token() == first  # before the refresh point: held
            shift[0] = 3000.0  # past 80 % of the dev server's 3600 s
            rotated = await manager.get_token()  # waits for the fetch under the new key
            assert rotated != first
            assert manager.cache_key() == client.cache_key() != old_key
        assert idp.token_requests("mtls-client") == idp.issued_tokens("mtls-client") == 2


async def test_a_rotation_seen_by_another_scope_retires_the_hot_token(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki", client_cn="mtls-client")
    volume = ProjectedVolume(tmp_path / "tls")
    volume.write({"tls.crt": pki.client_cert.read_bytes(), "tls.key": pki.client_key.read_bytes()})
    async with DevAuthServer(ssl_context=pki.server_ssl_context) as idp:
        idp.register_client("mtls-client", auth_methods=["tls_client_auth"])
        client = mtls_client(idp, pki, volume)
        # A manager wrapping a manager re-keys through it (TokenManager.key_generation).
        inner = TokenManager(client)
        async with TokenManager(inner) as manager:
            first = await manager.get_token()
            assert await manager.get_token() is first  # the hot branch
            cert, key = pki.issue_client_cert("mtls-client-2")
            idp.set_tls_client_cn("mtls-client", "mtls-client-2")
            volume.write({"tls.crt": cert, "tls.key": key})
            await manager.get_token("other")  # a fetch: the rotation is seen here
            rotated = await manager.get_token()
            assert rotated != first
            assert manager.cache_key() == inner.cache_key() == client.cache_key()
        assert idp.token_requests("mtls-client") == 3


# --------------------------------------------------------------------------- check


async def test_check_reports_each_source_its_age_and_what_to_fix(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    shared = ProjectedVolume(tmp_path / "open", mode=0o644)  # Kubernetes' default mode
    shared.write({"client-secret": "secret-v1"})
    private = ProjectedVolume(tmp_path / "closed", mode=0o600)
    private.write({"client-secret": "secret-v1"})
    cases = {
        "value": "secret-v1",
        "open": SecretFile(shared.path("client-secret")),
        "closed": SecretFile(private.path("client-secret")),
    }
    results = {}
    for name, secret in cases.items():
        async with ClientCredentials(idp.token_url, client_id=CLIENT, client_secret=secret) as c:
            report = await tokenfleet.check(c)
        results[name] = report["credentials"]
    assert results["value"].ok and "a value given at start" in results["value"].detail
    assert results["closed"].ok and "changed 0 s ago" in results["closed"].detail
    assert str(private.path("client-secret")) in results["closed"].detail
    assert results["open"].ok is False and "chmod 600" in results["open"].fix
    assert "readable by other users (mode 644)" in results["open"].fix
    assert all("secret-v1" not in repr(r) for r in results.values())


async def test_check_flags_an_assertion_that_expires_before_the_next_refresh(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    workload = WorkloadIssuer()
    idp.register_federated_client("fed", workload, "sa", audience=idp.issuer)
    path = write_by_rename(tmp_path, "token", workload.mint("sa", idp.issuer, lifetime=30))
    async with ClientCredentials(
        idp.token_url, client_id="fed", client_assertion=AssertionFile(path)
    ) as client:
        report = await tokenfleet.check(client)
    result = report["credentials"]
    assert report["client authentication"].ok
    assert result.ok is False and "expires in" in result.detail
    assert "before the next token refresh" in result.fix and "kubelet" in result.fix
    assert report.exit_code == 2


async def test_check_names_a_missing_credential_file(idp: DevAuthServer, tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "client-secret"
    async with ClientCredentials(
        idp.token_url, client_id=CLIENT, client_secret=SecretFile(path)
    ) as client:
        report = await tokenfleet.check(client)
    failure = report["client authentication"]
    assert failure.ok is False and str(path) in failure.detail and str(path) in failure.fix
    assert "does not exist" in failure.detail and report.exit_code == 2
