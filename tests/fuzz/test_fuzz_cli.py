"""Fuzzing the command line in process: ``tokenfleet._cli.main(argv)`` with random argv.

Arguments are drawn from the real vocabulary (commands, flags, plausible and hostile
values) plus random text. The promise: an exit code of 0 (ok), 2 (usage), 3 (refused) or
4 (unavailable), never a traceback, never the secret, never a hang. ``serve`` and
``demo`` are left out: they run until interrupted (tests/integration/test_cli.py covers
them). The secret never appearing in CLI output is also checked by every test_cli.py run.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenfleet._cli import main
from tokenfleet.testing import DevAuthServer

SECRET = "fuzz-S3cr3t-never-shown-0123456789"
EXAMPLE_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def idp(threaded_idp: DevAuthServer) -> DevAuthServer:
    """The module's threaded server, with the fuzzed client registered."""
    threaded_idp.register_client("fuzz", SECRET, scopes=["a", "b"])
    return threaded_idp


@st.composite
def argvs(draw: st.DrawFn, idp: DevAuthServer, secret_file: str) -> list[str]:
    value = st.one_of(
        st.sampled_from(
            [
                idp.token_url,
                idp.issuer,
                "http://127.0.0.1:1/token",
                "https://idp.example.invalid/token",
                "fuzz",
                "nobody",
                secret_file,
                "/nonexistent/file",
                "memory://",
                "redis://127.0.0.1:1/0",
                "bogus://x",
                "a b",
                "0",
                "-1",
                "1e999",
                "nan",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
                "",
            ]
        ),
        st.text(
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=15
        ),
    )
    flag = st.sampled_from(
        [
            "--token-url", "--issuer", "--client-id", "--client-secret-file", "--client-secret",
            "--auth-method", "--scope", "--audience", "--resource", "--private-key-file",
            "--timeout", "--store", "--json", "--min-ttl", "--max-latency", "-v", "--help",
            "--version", "--ca-file",
        ]
    )  # fmt: skip
    command = draw(st.sampled_from(["token", "decode", "check", "", "bogus"]))
    rest = draw(st.lists(st.one_of(flag, value), max_size=8))
    argv = [command, *rest] if command else rest
    return [arg for arg in argv if arg != "-"]  # "-" reads stdin


def test_random_argv_exits_cleanly(
    idp: DevAuthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o600)
    for name in [k for k in os.environ if k.startswith("TOKENFLEET_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    @settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(argvs(idp, str(secret_file)))
    def check(argv: list[str]) -> None:
        out, err = io.StringIO(), io.StringIO()
        codes: list[object] = []

        def run() -> None:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    codes.append(main(argv))
                except SystemExit as exc:  # argparse: usage errors, --help, --version
                    codes.append(exc.code)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(EXAMPLE_TIMEOUT)
        assert not thread.is_alive(), f"tokenfleet {argv} hangs"
        code = 0 if codes == [None] else codes[0] if codes else "crashed"
        assert code in (0, 2, 3, 4), (argv, code, err.getvalue()[-500:])
        output = out.getvalue() + err.getvalue()
        assert "Traceback" not in output, output
        assert SECRET not in output

    check()
