"""What README's first command (``scripts/demo.sh``) needs from a fresh clone: the place
it makes its virtualenv in, ``.venv``, free or already a directory. A stray file there
(one was committed once: a tool's pointer, ``.tox/bench``) makes ``python3 -m venv
.venv`` fail before anything runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_demo_scripts_venv_path_is_not_taken_by_a_file() -> None:
    script = (ROOT / "scripts" / "demo.sh").read_text()
    assert "python3 -m venv .venv" in script  # the path this test guards
    venv = ROOT / ".venv"
    assert not venv.exists() or venv.is_dir(), f"{venv} is a file: demo.sh cannot make its venv"
