"""The ``tokenfleet`` command line, run as a subprocess against a dev authorization server.

Every run goes through :func:`tokenfleet`, which also checks that the client secret
appears in no output: not on stdout, not on stderr, not in an error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from redis_topologies import Cluster
from tokenfleet.testing import DevAuthServer

SECRET = "cli-S3cr3t-never-shown-0123456789abcdef"
CLIENT = "cli-svc"
TIMEOUT = 60.0
COMMANDS = ("token", "decode", "check", "serve", "demo")


@pytest.fixture(scope="module")
def idp(threaded_idp: DevAuthServer) -> DevAuthServer:
    """The module's threaded server (hour-long tokens), with the CLI's client registered."""
    threaded_idp.register_client(CLIENT, SECRET, scopes=["orders:read", "orders:write"])
    return threaded_idp


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFLEET_")}
    return {**env, **extra}


def cli_env(idp: DevAuthServer) -> dict[str, str]:
    """The environment that points the CLI at ``idp`` as the test client."""
    return base_env(
        TOKENFLEET_TOKEN_URL=idp.token_url,
        TOKENFLEET_CLIENT_ID=CLIENT,
        TOKENFLEET_CLIENT_SECRET=SECRET,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI's error output, which must be a single line."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def env(idp: DevAuthServer) -> dict[str, str]:
    return cli_env(idp)


def tokenfleet(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tokenfleet ARGS``; fail if the secret shows anywhere."""
    result = subprocess.run(
        [sys.executable, "-m", "tokenfleet", *args],
        env=env if env is not None else base_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


# ---------------------------------------------------------------------- token


def test_token_prints_the_access_token_alone(idp: DevAuthServer, env: dict[str, str]) -> None:
    result = tokenfleet("token", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eyJ")
    assert jwt.decode(lines[0], options={"verify_signature": False})["client_id"] == CLIENT


def test_token_json(env: dict[str, str]) -> None:
    result = tokenfleet("token", "--json", "--scope", "orders:read", env=env)
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)
    assert token["token_type"] == "Bearer"
    assert token["scopes"] == ["orders:read"]
    assert 3500 < token["expires_in"] <= 3600
    assert token["access_token"].startswith("eyJ")


@pytest.mark.parametrize("how", ["env", "flag"])
def test_token_secret_from_a_file(idp: DevAuthServer, tmp_path: Path, how: str) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    env = base_env(TOKENFLEET_TOKEN_URL=idp.token_url, TOKENFLEET_CLIENT_ID=CLIENT)
    if how == "env":
        env["TOKENFLEET_CLIENT_SECRET_FILE"] = str(secret_file)
        result = tokenfleet("token", env=env)
    else:
        result = tokenfleet("token", "--client-secret-file", str(secret_file), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("eyJ")


def test_token_flags_override_the_environment(idp: DevAuthServer, env: dict[str, str]) -> None:
    env["TOKENFLEET_TOKEN_URL"] = "http://127.0.0.1:1/token"
    result = tokenfleet("token", "--token-url", idp.token_url, env=env)
    assert result.returncode == 0, result.stderr


def test_token_store_reuses_one_token(
    idp: DevAuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    before = idp.token_requests(CLIENT)
    store = f"file://{tmp_path / 'cache'}"
    first = tokenfleet("token", "--store", store, env=env)
    second = tokenfleet("token", env={**env, "TOKENFLEET_STORE": store})
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    assert idp.token_requests(CLIENT) - before == 1


def test_token_by_discovery(idp: DevAuthServer, env: dict[str, str]) -> None:
    del env["TOKENFLEET_TOKEN_URL"]
    result = tokenfleet("token", "--issuer", idp.issuer, env=env)
    assert result.returncode == 0, result.stderr


def test_client_secret_flag_is_refused_without_echo(env: dict[str, str]) -> None:
    result = tokenfleet("token", "--client-secret", SECRET, env=env)
    assert result.returncode == 2
    assert "TOKENFLEET_CLIENT_SECRET" in result.stderr


# ---------------------------------------------------------------------- exit codes


def test_exit_2_for_usage_errors(env: dict[str, str]) -> None:
    assert tokenfleet("token", "--no-such-flag", env=env).returncode == 2
    assert tokenfleet(env=env).returncode == 2  # no command
    missing = tokenfleet("token", env=base_env(TOKENFLEET_CLIENT_ID=CLIENT))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "tokenfleet token: configuration: missing settings: no token endpoint: set "
        "TOKENFLEET_TOKEN_URL (or TOKENFLEET_ISSUER to discover it), or pass --token-url URL; "
        "no client secret for client_secret_basic: set TOKENFLEET_CLIENT_SECRET or "
        "TOKENFLEET_CLIENT_SECRET_FILE, or pass --client-secret-file PATH"
    ]


def test_exit_2_without_a_secret(idp: DevAuthServer) -> None:
    result = tokenfleet(
        "token", env=base_env(TOKENFLEET_TOKEN_URL=idp.token_url, TOKENFLEET_CLIENT_ID=CLIENT)
    )
    assert result.returncode == 2
    assert "TOKENFLEET_CLIENT_SECRET" in result.stderr


def test_exit_3_when_refused(env: dict[str, str]) -> None:
    result = tokenfleet("token", env={**env, "TOKENFLEET_CLIENT_SECRET": "wrong-secret"})
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid_client" in lines[0]
    assert result.stdout == ""


def test_exit_4_when_unreachable(env: dict[str, str]) -> None:
    result = tokenfleet("token", "--timeout", "2", env={**env, "TOKENFLEET_TOKEN_URL": _dead()})
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not reach the token endpoint" in lines[0]


def _dead() -> str:
    return "http://127.0.0.1:1/token"  # port 1: connection refused


# ---------------------------------------------------------------------- decode


def test_decode_a_token(env: dict[str, str]) -> None:
    token = tokenfleet("token", env=env).stdout.strip()
    result = tokenfleet("decode", token)
    assert result.returncode == 0, result.stderr
    assert '"alg": "RS256"' in result.stdout
    assert f'"client_id": "{CLIENT}"' in result.stdout
    assert "at+jwt" in result.stdout
    # exp is rounded up to whole seconds, so a fresh 3600 s token reads 59 or 60 minutes
    assert re.search(r"\(expires in (59|60) minutes\)", result.stdout), result.stdout


def test_decode_from_stdin(env: dict[str, str]) -> None:
    token = tokenfleet("token", env=env).stdout
    result = tokenfleet("decode", "--json", "-", stdin=f"Bearer {token}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["claims"]["client_id"] == CLIENT


def test_decode_an_expired_token() -> None:
    now = int(time.time())
    claims = {"sub": "x", "iat": now - 4 * 3600, "exp": now - 3 * 3600 - 60}
    token = jwt.encode(claims, "k" * 32, algorithm="HS256")
    result = tokenfleet("decode", token)
    assert result.returncode == 0, result.stderr
    assert "(expired 3 hours ago)" in result.stdout


def test_decode_an_opaque_token() -> None:
    result = tokenfleet("decode", "2YotnFZFEjr1zCsicMWpAA")
    assert result.returncode == 2
    assert "2YotnFZFEjr1zCsicMWpAA" not in result.stderr
    assert "not a JWT" in result.stderr and "opaque" in result.stderr


# ---------------------------------------------------------------------- check


def _lines(text: str, mark: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(mark)]


def test_check_all_pass(idp: DevAuthServer, env: dict[str, str], tmp_path: Path) -> None:
    result = tokenfleet(
        "check", "--issuer", idp.issuer, "--scope", "orders:read",
        "--store", f"file://{tmp_path / 'cache'}", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    names = [line.split()[1] for line in _lines(result.stdout, "✓")]
    assert names == [
        "discovery",
        "TLS",
        "client",
        "credentials",
        "latency",
        "scopes",
        "lifetime",
        "token",
        "store",
    ]
    assert _lines(result.stdout, "✗") == []
    assert "all 9 checks passed" in result.stdout


def test_check_wrong_secret(env: dict[str, str]) -> None:
    result = tokenfleet("check", env={**env, "TOKENFLEET_CLIENT_SECRET": "wrong-secret"})
    assert result.returncode == 3
    failed = _lines(result.stdout, "✗")
    assert len(failed) == 1 and "client authentication" in failed[0]
    assert "invalid_client" in failed[0]
    fix = result.stdout.splitlines()[result.stdout.splitlines().index(failed[0]) + 1]
    assert "fix:" in fix and "TOKENFLEET_CLIENT_SECRET" in fix


def test_check_unreachable_store(env: dict[str, str]) -> None:
    result = tokenfleet("check", "--store", "redis://127.0.0.1:1/0", env=env)
    assert result.returncode == 4
    failed = _lines(result.stdout, "✗")
    assert len(failed) == 1 and "store" in failed[0] and "unreachable" in failed[0]
    assert "redis-cli" in result.stdout


@pytest.mark.redis
def test_check_names_the_url_form_for_a_cluster_node(
    env: dict[str, str], redis_cluster: Cluster
) -> None:
    node = f"redis://127.0.0.1:{redis_cluster.ports[0]}/0"
    result = tokenfleet("check", "--store", node, env=env)
    assert result.returncode == 2
    failed = _lines(result.stdout, "✗")
    assert len(failed) == 1 and "store" in failed[0] and "redis+cluster://" in failed[0]


def test_check_missing_scope(idp: DevAuthServer, env: dict[str, str]) -> None:
    idp.register_client("cli-narrow", SECRET, scopes=["a", "b"], grant_fewer_scopes=["b"])
    result = tokenfleet(
        "check", "--scope", "a b", env={**env, "TOKENFLEET_CLIENT_ID": "cli-narrow"}
    )
    assert result.returncode == 3
    failed = _lines(result.stdout, "✗")
    assert len(failed) == 1 and "missing b" in failed[0]


def test_check_unreachable_endpoint(env: dict[str, str]) -> None:
    result = tokenfleet("check", "--timeout", "2", env={**env, "TOKENFLEET_TOKEN_URL": _dead()})
    assert result.returncode == 4
    assert "fix:" in result.stdout


# ---------------------------------------------------------------------- serve


def test_serve_prints_a_working_command() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "tokenfleet", "serve"],
        env=base_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines = []
        for line in server.stdout:
            lines.append(line)
            if line.strip().endswith("tokenfleet token"):
                break
        exports = dict(re.findall(r"export (TOKENFLEET_\w+)=(\S+)", "".join(lines)))
        assert set(exports) == {
            "TOKENFLEET_TOKEN_URL",
            "TOKENFLEET_CLIENT_ID",
            "TOKENFLEET_CLIENT_SECRET",
        }
        result = tokenfleet("token", env=base_env(**exports))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("eyJ")
    finally:
        server.terminate()
        remaining = server.communicate(timeout=TIMEOUT)
    assert server.returncode == 0, remaining


# ---------------------------------------------------------------------- demo


@pytest.mark.slow
def test_demo() -> None:
    result = tokenfleet(
        "demo", "--workers", "2", "--coroutines", "20", "--duration", "2", "--lifetime", "1"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "process  callers  get_token calls  cache hits  token requests" in out
    # The columns are explained in the output itself, not only in docs/cli.md.
    assert "  cache hits: calls answered from the process's own memory" in out
    assert "  token requests: requests this process sent to the authorization server" in out
    assert re.search(r"^total\s+40\s", out, re.MULTILINE)
    requests = int(re.search(r"server saw (\d+) token requests", out).group(1))  # type: ignore[union-attr]
    assert 1 <= requests <= 6  # about one per lifetime for the whole fleet, not per process
    assert re.search(
        r"2 processes × 20 coroutines, [\d,]+ get_token calls, \d+ token requests", out
    )


# ---------------------------------------------------------------------- help


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    result = tokenfleet(*args)
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: tokenfleet{' ' + command if command else ''}")


def test_python_dash_m_and_the_console_script_agree() -> None:
    script = Path(sys.executable).with_name("tokenfleet")
    if not script.exists():
        pytest.skip("the tokenfleet console script is not installed next to this python")
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("tokenfleet ")


def test_check_wrong_issuer(idp: DevAuthServer, env: dict[str, str]) -> None:
    del env["TOKENFLEET_TOKEN_URL"]
    result = tokenfleet("check", "--issuer", idp.issuer + "/nope", env=env)
    assert result.returncode == 2
    failed = _lines(result.stdout, "✗")
    assert len(failed) == 1 and "discovery" in failed[0]
    assert "fix:" in result.stdout
