"""Dependency floors exclude the versions with published advisories that affect us
(docs/security.md, "Dependency floors"), and the installed versions meet them."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"

# The first version after the last advisory that reaches tokenfleet's use of the package.
ADVISORY_FREE = {
    "aiohttp": "3.13.4",  # CVE-2026-22815, CVE-2026-34516: uncapped header memory
    "pyjwt": "2.10.1",  # CVE-2024-53861: iss compared by substring in 2.10.0
}


def requirements() -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    return {req.name.lower(): req for req in found}


def floor(req: Requirement) -> Version:
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==")]
    assert floors, f"{req.name} has no floor"
    return max(floors)


@pytest.mark.parametrize("name", sorted(ADVISORY_FREE))
def test_dependency_floor_excludes_versions_with_advisories(name: str) -> None:
    assert floor(requirements()[name]) >= Version(ADVISORY_FREE[name])


@pytest.mark.parametrize("name", sorted(ADVISORY_FREE))
def test_installed_version_meets_the_floor(name: str) -> None:
    req = requirements()[name]
    assert req.specifier.contains(version(name), prereleases=True), (name, version(name))
