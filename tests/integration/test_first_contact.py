"""First contact (issue 16): one configuration for library and CLI, ``tokenfleet.check``
as a library call, and CLI errors that say what happened with the documented exit code.

CLI tests run ``python -m tokenfleet`` in a subprocess (``tokenfleet`` from test_cli.py,
which also fails on any traceback or leaked secret) against a real dev server.
"""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_cli import CLIENT, SECRET, cli_env

import tokenfleet as tf
from helpers import pem_pair
from tokenfleet.stores import FileStore
from tokenfleet.testing import DevAuthServer


@pytest.fixture(scope="module")
def idp(threaded_idp: DevAuthServer) -> DevAuthServer:
    """The module's threaded server (hour-long tokens), with the CLI's clients registered."""
    threaded_idp.register_client(CLIENT, SECRET, scopes=["orders:read"])
    threaded_idp.register_client(
        "post-only", SECRET, auth_methods=["client_secret_post"], scopes=["orders:read"]
    )
    return threaded_idp


@pytest.fixture
def env(idp: DevAuthServer) -> dict[str, str]:
    return cli_env(idp)


# ------------------------------------------------------------------ from_env (library)


async def test_from_env_reads_the_secret_file_and_auth_method(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    variables = {
        "APP_TOKEN_URL": idp.token_url,
        "APP_CLIENT_ID": "post-only",
        "APP_CLIENT_SECRET_FILE": str(secret_file),
        "APP_AUTH_METHOD": "client_secret_post",
        "APP_SCOPES": "orders:read",
    }
    async with tf.ClientCredentials.from_env("APP_", env=variables) as client:
        assert client.auth_method == "client_secret_post"
        token = await client.fetch_token()
    assert token.scopes == ("orders:read",)
    assert idp.requests_log[-1].client_id == "post-only"


async def test_from_env_secret_file_is_read_again_when_it_changes(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    """The file is a SecretFile, not a value read once: a rotated secret is picked up."""
    secret_file = tmp_path / "secret"
    secret_file.write_text("not-the-secret\n", encoding="utf-8")
    variables = {
        "TOKENFLEET_TOKEN_URL": idp.token_url,
        "TOKENFLEET_CLIENT_ID": CLIENT,
        "TOKENFLEET_CLIENT_SECRET": "ignored: the file wins",
        "TOKENFLEET_CLIENT_SECRET_FILE": str(secret_file),
    }
    async with tf.ClientCredentials.from_env(env=variables) as client:
        with pytest.raises(tf.InvalidClient):
            await client.fetch_token()
        secret_file.write_text(SECRET + "\n", encoding="utf-8")
        token = await client.fetch_token()
    assert token.authorization.startswith("Bearer ")


async def test_from_env_private_key_file_means_private_key_jwt(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    private, public = pem_pair(ec.generate_private_key(ec.SECP256R1()))
    idp.register_client("signer", public_key=public, auth_methods=["private_key_jwt"])
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(private)
    variables = {
        "TOKENFLEET_TOKEN_URL": idp.token_url,
        "TOKENFLEET_CLIENT_ID": "signer",
        "TOKENFLEET_PRIVATE_KEY_FILE": str(key_file),
    }
    async with tf.ClientCredentials.from_env(env=variables) as client:
        assert client.auth_method == "private_key_jwt"
        await client.fetch_token()


def test_from_env_lists_every_missing_setting() -> None:
    with pytest.raises(tf.ConfigurationError) as caught:
        tf.ClientCredentials.from_env(env={})
    message = str(caught.value)
    for name in ("TOKENFLEET_TOKEN_URL", "TOKENFLEET_CLIENT_ID", "TOKENFLEET_CLIENT_SECRET"):
        assert name in message
    assert "--" not in message  # the library names variables, not CLI flags


async def test_manager_from_env_builds_its_store(idp: DevAuthServer, tmp_path: Path) -> None:
    variables = {
        "TOKENFLEET_TOKEN_URL": idp.token_url,
        "TOKENFLEET_CLIENT_ID": CLIENT,
        "TOKENFLEET_CLIENT_SECRET": SECRET,
        "TOKENFLEET_STORE": (tmp_path / "tokens").as_uri(),
    }
    async with tf.TokenManager.from_env(env=variables) as tokens:
        assert isinstance(tokens.store, FileStore)
        token = await tokens.get_token()
    assert token.authorization.startswith("Bearer ")


# ------------------------------------------------------------------ check (library)


async def test_check_as_a_library_call(idp: DevAuthServer, tmp_path: Path) -> None:
    client = tf.ClientCredentials(idp.token_url, client_id=CLIENT, client_secret=SECRET)
    async with client:
        report = await tf.check(client, store=(tmp_path / "s").as_uri())
    assert report.ok and bool(report) and report.exit_code == 0
    assert [r.name for r in report.results] == [
        "discovery",
        "TLS",
        "client authentication",
        "credentials",
        "latency",
        "scopes",
        "lifetime",
        "token type",
        "store",
    ]
    assert report["client authentication"].ok is True
    assert report["discovery"].ok is None  # skipped: no issuer


async def test_check_reports_a_refusal_with_its_fix(idp: DevAuthServer) -> None:
    client = tf.ClientCredentials(idp.token_url, client_id=CLIENT, client_secret="wrong")
    async with client:
        report = await tf.check(client)
    assert not report
    assert report.exit_code == 3
    failure = report.failures[0]
    assert failure.name == "client authentication"
    assert "invalid_client" in failure.detail and failure.fix
    assert report["scopes"].ok is None


# ------------------------------------------------------------------ x5t#S256 (Entra ID)


def _self_signed(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc-orders")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_certificate_puts_x5t_s256_in_the_client_assertion(idp: DevAuthServer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = pem_pair(key)
    certificate = _self_signed(key)
    idp.register_client("entra-app", public_key=public, auth_methods=["private_key_jwt"])
    client = tf.ClientCredentials(
        idp.token_url, client_id="entra-app", private_key=private, certificate=certificate
    )
    form: list[tuple[str, str]] = []
    await client._auth.apply(form, {}, idp.token_url)  # the assertion as it is sent
    header = jwt.get_unverified_header(dict(form)["client_assertion"])
    fingerprint = x509.load_pem_x509_certificate(certificate).fingerprint(hashes.SHA256())
    expected = base64.urlsafe_b64encode(fingerprint).rstrip(b"=").decode()
    assert header["x5t#S256"] == expected
    async with client:
        token = await client.fetch_token()  # and the server accepts it
    assert token.authorization.startswith("Bearer ")


def test_certificate_needs_private_key_jwt_and_a_certificate() -> None:
    with pytest.raises(tf.ConfigurationError, match="private_key_jwt"):
        tf.ClientCredentials(
            "https://idp.example.com/token", client_id="c", client_secret="s", certificate=b"x"
        )
    private, _ = pem_pair(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(tf.ConfigurationError, match=r"not a PEM X\.509 certificate"):
        tf.ClientCredentials(
            "https://idp.example.com/token", client_id="c", private_key=private, certificate="x"
        )


async def test_from_env_certificate_file(idp: DevAuthServer, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = pem_pair(key)
    (tmp_path / "key.pem").write_bytes(private)
    (tmp_path / "cert.pem").write_bytes(_self_signed(key))
    idp.register_client("entra-env", public_key=public, auth_methods=["private_key_jwt"])
    variables = {
        "TOKENFLEET_TOKEN_URL": idp.token_url,
        "TOKENFLEET_CLIENT_ID": "entra-env",
        "TOKENFLEET_PRIVATE_KEY_FILE": str(tmp_path / "key.pem"),
        "TOKENFLEET_CERTIFICATE_FILE": str(tmp_path / "cert.pem"),
    }
    async with tf.ClientCredentials.from_env(env=variables) as client:
        form: list[tuple[str, str]] = []
        await client._auth.apply(form, {}, idp.token_url)
        assert "x5t#S256" in jwt.get_unverified_header(dict(form)["client_assertion"])
        await client.fetch_token()
    with pytest.raises(tf.ConfigurationError, match="TOKENFLEET_CERTIFICATE_FILE"):
        tf.ClientCredentials.from_env(
            env={**variables, "TOKENFLEET_CERTIFICATE_FILE": str(tmp_path / "missing.pem")}
        )
