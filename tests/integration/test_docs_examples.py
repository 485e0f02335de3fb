"""The examples, the README quickstart and the docs' code blocks run as written.

Conventions in README.md and docs/**/*.md (every page, found by glob: a new page is
checked without being listed here). Every ```` ```python ```` block is one of:

* a complete script, preceded by ``<!-- run -->``: it is run in a subprocess with
  ``TOKENFLEET_TOKEN_URL``, ``TOKENFLEET_CLIENT_ID`` and ``TOKENFLEET_CLIENT_SECRET``
  pointing at a dev authorization server (and ``API_URL`` at its protected resource, as
  ``tokenfleet serve`` prints), and must exit 0;
* a test module, preceded by ``<!-- run: pytest -->``: it is run with pytest in a
  subprocess (with ``PYTEST_INI``: pytest-asyncio in auto mode, warnings as errors) and
  must pass;
* a fragment, preceded by ``<!-- fragment -->`` or starting with a ``# fragment``
  comment: it must compile (top-level ``await`` allowed) and type-check with mypy, inside
  an ``async def`` where the names of ``FRAGMENT_PRELUDE`` (``client``, ``tokens``,
  ``token``, ``secret``, ...) are declared.

A block that is none of these fails ``test_every_block_is_a_program_or_a_fragment``.

Every script's output is checked for leaks: no client secret, no JWT.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import tokenfleet
from tokenfleet.testing import DevAuthServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TIMEOUT = 60.0

# What each example must print; a new example needs an entry here.
EXPECTED_OUTPUT: dict[str, list[str]] = {
    "aiohttp_service.py": [
        "orders service listening on http://127.0.0.1:",
        "token revoked at the authorization server after 200 requests",
        "requests served: 400, 400 answered 200 OK",
        "token requests seen by the server: 2",
    ],
    "quickstart.py": [
        "callers: 1000",
        "token requests seen by the server: 1",
        "token: Token(token_type='Bearer', access_token=<sha256:",
    ],
    "fetch_once.py": [
        "TOKENFLEET_TOKEN_URL is not set: using the dev authorization server",
        "token: Token(token_type='Bearer', access_token=<sha256:",
    ],
    "fleet.py": [
        "store: file",
        "processes: 4, callers: 1000",
        "distinct tokens: 1",
        "token requests seen by the server: 1",
    ],
    "private_key_jwt.py": [
        "token: Token(token_type='Bearer', access_token=<sha256:",
        "token requests from svc-signer: 1",
    ],
}

# A fenced python block at the start of a line, optionally preceded by a marker:
# <!-- run -->, <!-- run: pytest --> or <!-- fragment -->.
_BLOCK = re.compile(
    r"^(?:<!--\s*(?P<marker>run(?::\s*(?P<how>[\w-]+))?|fragment)\s*-->\n)?"
    r"```python\n(?P<code>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_FRAGMENT_COMMENT = re.compile(r"\A\s*# fragment\b")
# What a fragment may use without defining it: the names the docs' prose introduces.
FRAGMENT_PRELUDE = """\
import asyncio
import os

import aiohttp
import httpx
import redis.asyncio

import tokenfleet

token_url: str
secret: tokenfleet.Secret
client: tokenfleet.ClientCredentials
tokens: tokenfleet.TokenManager
token: tokenfleet.Token
store: tokenfleet.TokenStore
"""
# The settings docs/testing.md tells users to have.
PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""
_JWT = re.compile(r"eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.")


@dataclass(frozen=True)
class Snippet:
    """One python code block of a Markdown file."""

    path: Path
    line: int
    code: str
    run: str | None  # "script", "pytest", "fragment", or None: unmarked (an error)

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets(paths: list[Path]) -> list[Snippet]:
    found = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("code"))
            code = match.group("code")
            marker = match.group("marker")
            run: str | None = None
            if marker == "fragment" or (marker is None and _FRAGMENT_COMMENT.match(code)):
                run = "fragment"
            elif marker is not None:
                run = match.group("how") or "script"
            found.append(Snippet(path, line, code, run))
    return found


ALL_SNIPPETS = snippets(DOC_FILES)
RUNNABLE = [s for s in ALL_SNIPPETS if s.run in ("script", "pytest")]
FRAGMENTS = [s for s in ALL_SNIPPETS if s.run == "fragment"]


def env_for(idp: DevAuthServer | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFLEET_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "error"
    if idp is not None:
        env["TOKENFLEET_TOKEN_URL"] = idp.token_url
        env["TOKENFLEET_CLIENT_ID"] = idp.client_id
        env["TOKENFLEET_CLIENT_SECRET"] = idp.client_secret
        env["API_URL"] = idp.resource_url
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a Python subprocess; fail the test with its output unless it exits 0."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode}:\n{output}"
    return output


def assert_no_leak(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output, "a secret appears in the output"
    assert not _JWT.search(output), "an access token (JWT) appears in the output"


# --------------------------------------------------------------------------- examples


def test_every_example_has_expected_output() -> None:
    assert EXAMPLES, "examples/ has no scripts"
    assert {p.name for p in EXAMPLES} == set(EXPECTED_OUTPUT)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(example: Path, tmp_path: Path) -> None:
    output = run([str(example)], env_for(None), cwd=tmp_path)
    for expected in EXPECTED_OUTPUT.get(example.name, []):
        assert expected in output, f"{expected!r} not in output:\n{output}"
    assert_no_leak(output)


def test_fetch_once_reads_the_environment(threaded_idp: DevAuthServer, tmp_path: Path) -> None:
    before = threaded_idp.token_requests(threaded_idp.client_id)
    output = run([str(ROOT / "examples" / "fetch_once.py")], env_for(threaded_idp), cwd=tmp_path)
    assert "not set" not in output
    assert "token: Token(" in output
    assert threaded_idp.token_requests(threaded_idp.client_id) == before + 1
    assert_no_leak(output, threaded_idp.client_secret)


@pytest.mark.redis
def test_fleet_example_on_redis(redis_url: str, tmp_path: Path) -> None:
    env = env_for(None) | {"TOKENFLEET_STORE": redis_url}
    output = run([str(ROOT / "examples" / "fleet.py")], env, cwd=tmp_path)
    assert "store: redis" in output
    assert "distinct tokens: 1" in output
    assert "token requests seen by the server: 1" in output


# --------------------------------------------------------------------------- README


def test_readme_quickstart_runs_against_a_server(
    threaded_idp: DevAuthServer, tmp_path: Path
) -> None:
    blocks = [s for s in RUNNABLE if s.path.name == "README.md"]
    assert blocks, "README.md should start with a <!-- run --> quickstart block"
    before = threaded_idp.token_requests(threaded_idp.client_id)
    script = tmp_path / "readme_quickstart.py"
    script.write_text(blocks[0].code, encoding="utf-8")
    output = run([str(script)], env_for(threaded_idp), cwd=tmp_path)
    assert "Token(token_type='Bearer', access_token=<sha256:" in output
    assert threaded_idp.token_requests(threaded_idp.client_id) == before + 1
    assert_no_leak(output, threaded_idp.client_secret)


# --------------------------------------------------------------------------- docs


def test_docs_have_runnable_snippets() -> None:
    docs = {s.path.name for s in RUNNABLE}
    assert {"quickstart.md", "client-authentication.md", "stores.md", "testing.md"} <= docs
    assert {"README.md", "providers.md"} <= docs
    assert {s.run for s in RUNNABLE} <= {"script", "pytest"}


def test_api_page_covers_every_public_name_and_says_it_is_built() -> None:
    """docs/api.md is mkdocstrings directives: complete, and honest about being empty as
    Markdown (the README promises docs that read as Markdown)."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: tokenfleet\.(\w+)", text, re.MULTILINE))
    missing = set(tokenfleet.__all__) - documented - {"__version__"}
    assert not missing, f"add ::: tokenfleet.NAME to docs/api.md for {sorted(missing)}"
    assert "only in the built site" in text
    assert "docs/api.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_block_is_a_program_or_a_fragment() -> None:
    unmarked = [s.id for s in ALL_SNIPPETS if s.run is None]
    assert not unmarked, (
        "python blocks that are neither a complete program nor a marked fragment: "
        f"{', '.join(unmarked)}. Put <!-- run --> before a complete script (run against "
        "the dev server), or <!-- fragment --> before a fragment (compiled, type-checked)"
    )
    assert {s.run for s in ALL_SNIPPETS} <= {"script", "pytest", "fragment"}


def test_the_block_marker_rules_catch_an_unmarked_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- run -->\n```python\nprint(1)\n```\n\n"
        "<!-- fragment -->\n```python\nawait tokens.get_token()\n```\n\n"
        "```python\n# fragment: a comment marks it too\nx = 1\n```\n\n"
        "```python\nprint('neither')\n```\n",
        encoding="utf-8",
    )
    assert [s.run for s in snippets([page])] == ["script", "fragment", "fragment", None]


def _as_module(snippet: Snippet) -> str:
    body = textwrap.indent(snippet.code, "    ") or "    pass\n"
    return f"{FRAGMENT_PRELUDE}\n\nasync def _fragment() -> None:\n{body}    return None\n"


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One mypy run over every fragment (a run per block would take minutes)."""
    directory = tmp_path_factory.mktemp("fragments")
    names: dict[str, str] = {}
    for index, snippet in enumerate(FRAGMENTS):
        name = f"fragment_{index}.py"
        (directory / name).write_text(_as_module(snippet), encoding="utf-8")
        names[name] = snippet.id
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--python-version",
            "3.11",
            "--check-untyped-defs",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(directory / ".cache"),
            *sorted(names),
        ],
        cwd=directory,
        env=env_for(None) | {"PYTHONWARNINGS": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors: dict[str, list[str]] = {snippet_id: [] for snippet_id in names.values()}
    for line in result.stdout.splitlines():
        name = line.split(":", 1)[0]
        if name in names:
            errors[names[name]].append(line)
        elif line.strip():
            errors.setdefault("mypy", []).append(line)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return errors


@pytest.mark.parametrize("snippet", FRAGMENTS, ids=lambda s: s.id)
def test_fragment_type_checks(snippet: Snippet, mypy_errors: dict[str, list[str]]) -> None:
    assert not mypy_errors.get("mypy"), mypy_errors["mypy"]
    assert not mypy_errors[snippet.id], "\n".join(
        [
            *mypy_errors[snippet.id],
            "--- as checked (the block inside async def):",
            _as_module(snippet),
        ]
    )


@pytest.mark.parametrize("snippet", ALL_SNIPPETS, ids=lambda s: s.id)
def test_snippet_compiles(snippet: Snippet) -> None:
    compile(snippet.code, snippet.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("snippet", RUNNABLE, ids=lambda s: s.id)
def test_snippet_runs(snippet: Snippet, threaded_idp: DevAuthServer, tmp_path: Path) -> None:
    if snippet.run == "pytest":
        (tmp_path / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
        module = tmp_path / "test_snippet.py"
        module.write_text(snippet.code, encoding="utf-8")
        args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)]
        output = run(args, env_for(None), cwd=tmp_path)
        assert " passed" in output and "failed" not in output, output
    else:
        script = tmp_path / "snippet.py"
        script.write_text(snippet.code, encoding="utf-8")
        output = run([str(script)], env_for(threaded_idp), cwd=tmp_path)
    assert_no_leak(output, threaded_idp.client_secret)
