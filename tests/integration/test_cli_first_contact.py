"""The ``tokenfleet`` CLI on first contact (issue 16): exit codes as docs/cli.md defines
them, one line each with a fix, flags named rather than Python arguments, quiet ends on a
closed pipe, ``--log-http``, and ``serve`` giving a fresh shell what it needs.

Each test runs ``python -m tokenfleet`` in a subprocess (``tokenfleet`` from test_cli.py,
which also fails on a traceback or a leaked secret) against a real dev server.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import CLIENT, SECRET, TIMEOUT, base_env, cli_env, one_error_line, tokenfleet

from redis_server import free_port
from tokenfleet.testing import DevAuthServer


@pytest.fixture(scope="module")
def idp(threaded_idp: DevAuthServer) -> DevAuthServer:
    """The module's threaded server (hour-long tokens), with the CLI's client registered."""
    threaded_idp.register_client(CLIENT, SECRET, scopes=["orders:read"])
    return threaded_idp


@pytest.fixture
def env(idp: DevAuthServer) -> dict[str, str]:
    return cli_env(idp)


# ------------------------------------------------------------------ exit codes and lines


@pytest.mark.parametrize("path", ["/nope", "/jwks"])  # 404, 405 (GET-only route)
def test_no_token_endpoint_at_the_path_is_a_configuration_error(
    idp: DevAuthServer, env: dict[str, str], path: str
) -> None:
    result = tokenfleet("token", env={**env, "TOKENFLEET_TOKEN_URL": idp.url + path})
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert "no token endpoint at this path" in line
    assert "--issuer" in line and "issuer=" not in line


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999/token", "http://127.0.0.1:port/token", "http//x/token"]
)
def test_invalid_port_or_malformed_url_is_exit_2(env: dict[str, str], url: str) -> None:
    result = tokenfleet("token", env={**env, "TOKENFLEET_TOKEN_URL": url})
    assert result.returncode == 2, result.stderr
    assert "--token-url" in one_error_line(result)


def test_https_to_a_plain_http_port_gets_a_hint(idp: DevAuthServer, env: dict[str, str]) -> None:
    url = idp.token_url.replace("http://", "https://")
    result = tokenfleet("token", "--timeout", "5", env={**env, "TOKENFLEET_TOKEN_URL": url})
    assert result.returncode == 4, result.stderr
    assert "speaks plain HTTP" in one_error_line(result)


def test_messages_name_flags_not_python_arguments(env: dict[str, str]) -> None:
    url = "http://idp.example.com/token"
    result = tokenfleet("token", env={**env, "TOKENFLEET_TOKEN_URL": url})
    assert result.returncode == 2
    line = one_error_line(result)
    assert "--allow-insecure-http" in line
    assert "allow_insecure_http" not in line and "token_url" not in line


def test_long_messages_are_not_cut_mid_word(env: dict[str, str]) -> None:
    url = "http://127.0.0.1:1/" + "word-" * 120
    result = tokenfleet("token", "--timeout", "2", env={**env, "TOKENFLEET_TOKEN_URL": url})
    line = one_error_line(result)
    assert line.endswith(" …") or len(line) < 500


def test_token_with_the_store_down_says_so(env: dict[str, str]) -> None:
    store = f"redis://127.0.0.1:{free_port()}/0"
    result = tokenfleet("token", "--store", store, env=env)
    assert result.returncode == 4, result.stderr
    line = one_error_line(result)
    assert "store" in line and "127.0.0.1" in line
    assert result.stdout == ""


def test_demo_with_the_store_down_says_so() -> None:
    store = f"redis://127.0.0.1:{free_port()}/0"
    result = tokenfleet("demo", "--workers", "1", "--duration", "1", "--store", store)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "store" in one_error_line(result)


def test_check_with_nothing_configured_lists_every_missing_setting() -> None:
    result = tokenfleet("check")
    assert result.returncode == 2
    for name in ("TOKENFLEET_TOKEN_URL", "TOKENFLEET_CLIENT_ID", "TOKENFLEET_CLIENT_SECRET"):
        assert name in result.stdout
    assert "fix the setting named above" not in result.stdout


@pytest.mark.parametrize("command", ["check", "decode"])
def test_a_closed_pipe_ends_quietly(env: dict[str, str], command: str) -> None:
    token = tokenfleet("token", env=env).stdout.strip()
    args = ["check"] if command == "check" else ["decode", token]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write fails
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tokenfleet", *args],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode in (0, 141)


def test_serve_port_in_use_or_out_of_range_is_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        in_use = tokenfleet("serve", "--port", port)
    assert in_use.returncode == 2
    assert "in use" in one_error_line(in_use) and "--port" in in_use.stderr
    out_of_range = tokenfleet("serve", "--port", "70000")
    assert out_of_range.returncode == 2
    assert "65535" in out_of_range.stderr


def test_decode_of_a_truncated_jwt_names_the_segment(env: dict[str, str]) -> None:
    token = tokenfleet("token", env=env).stdout.strip()
    header, claims, _ = token.split(".")
    cut = tokenfleet("decode", f"{header}.{claims}.")
    assert cut.returncode == 2
    assert "truncated or damaged JWT" in cut.stderr and "segment 3" in cut.stderr
    half = tokenfleet("decode", token[: len(header) + 10])
    assert "truncated or damaged JWT" in half.stderr and "2 segments" in half.stderr
    bad_claims = tokenfleet("decode", f"{header}.{claims[:-3]}.sig")
    assert "segment 2 of 3 (claims)" in bad_claims.stderr


def test_log_http_logs_requests_without_secrets(idp: DevAuthServer, env: dict[str, str]) -> None:
    result = tokenfleet("--log-http", "token", env=env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    logged = [line for line in result.stderr.splitlines() if "POST" in line]
    assert len(logged) == 1, result.stderr
    assert re.search(r"POST http://127\.0\.0\.1:\d+/token 200 [\d.]+ ?[µum]?s", logged[0])
    assert token not in result.stderr and SECRET not in result.stderr
    assert "eyJ" not in result.stderr and "Basic" not in result.stderr


# ------------------------------------------------------------------ serve


def _serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tokenfleet", "serve", *args],
        env=env or base_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    lines = []
    for line in server.stdout:
        lines.append(line)
        if "tokenfleet decode" in line:
            break
    return server, "".join(lines)


def _stop(server: subprocess.Popen[str]) -> None:
    server.terminate()
    server.communicate(timeout=TIMEOUT)
    assert server.returncode == 0


def test_serve_prints_what_a_fresh_shell_needs(tmp_path: Path) -> None:
    secret_file = tmp_path / "dev-secret"
    server, banner = _serve("--client-secret-file", str(secret_file))
    try:
        assert re.search(r"protected resource: +http://127\.0\.0\.1:\d+/resource", banner)
        block = banner.split("Get a token from another shell:")[1].strip().split("\n\n")[0]
        script = "\n".join(line.strip() for line in block.splitlines())
        assert "export API_URL=" in script
        # A fresh shell: the venv is not on PATH.
        fresh = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        assert shutil.which("bash")
        result = subprocess.run(
            ["bash", "-c", "set -e\n" + script],
            env=fresh,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("eyJ")
        first_secret = secret_file.read_text(encoding="utf-8").strip()
        assert first_secret in banner
    finally:
        _stop(server)
    # The same secret after a restart: pasted exports keep working.
    server, banner = _serve("--client-secret-file", str(secret_file))
    _stop(server)
    assert first_secret in banner


def test_serve_extra_clients_with_limited_scopes() -> None:
    server, banner = _serve("--client", "svc-read=orders:read")
    try:
        exports = dict(re.findall(r"export (TOKENFLEET_\w+)=(\S+)", banner))
        env = base_env(**{**exports, "TOKENFLEET_CLIENT_ID": "svc-read"})
        assert "svc-read" in banner
        allowed = tokenfleet("token", "--scope", "orders:read", env=env)
        assert allowed.returncode == 0, allowed.stderr
        refused = tokenfleet("token", "--scope", "orders:write", env=env)
        assert refused.returncode == 3
        assert "invalid_scope" in refused.stderr
    finally:
        _stop(server)


def test_check_with_an_invalid_setting_names_it(env: dict[str, str]) -> None:
    result = tokenfleet("check", env={**env, "TOKENFLEET_AUTH_METHOD": "client_secret_basik"})
    assert result.returncode == 2
    assert "TOKENFLEET_AUTH_METHOD" in result.stdout and "client_secret_basic" in result.stdout
