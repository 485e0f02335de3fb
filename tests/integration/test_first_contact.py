"""First contact (issue 16): one configuration for library and CLI, ``tokenfleet.check``
as a library call, and CLI errors that say what happened with the documented exit code.

CLI tests run ``python -m tokenfleet`` in a subprocess (``tokenfleet`` from test_cli.py,
which also fails on any traceback or leaked secret) against a real dev server.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from test_cli import CLIENT, SECRET, base_env

import tokenfleet as tf
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
    return base_env(
        TOKENFLEET_TOKEN_URL=idp.token_url,
        TOKENFLEET_CLIENT_ID=CLIENT,
        TOKENFLEET_CLIENT_SECRET=SECRET,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


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
