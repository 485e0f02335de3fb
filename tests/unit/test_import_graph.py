"""The layers of src/tokenfleet, enforced on the import graph (docs/architecture.md).

Every module is parsed (no import runs), and every import counts: at the top, inside
``if TYPE_CHECKING:`` and inside function bodies. The rules:

* no cycles between modules;
* ``tokenfleet.stores*`` imports neither ``tokenfleet._manager*`` nor ``tokenfleet._client*``;
* ``tokenfleet._client*`` does not import ``tokenfleet._manager*``;
* ``tokenfleet._util*`` imports nothing from tokenfleet.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "tokenfleet"

Graph = dict[str, set[str]]

# (importer prefix, imported prefix): an importer under the first may not import the second
FORBIDDEN = (
    ("tokenfleet.stores", "tokenfleet._manager"),
    ("tokenfleet.stores", "tokenfleet._client"),
    ("tokenfleet._client", "tokenfleet._manager"),
    ("tokenfleet._util", "tokenfleet"),
)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def modules(root: Path = SRC) -> dict[str, Path]:
    """Module name → file, for every .py under ``root / PACKAGE``."""
    found: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The tokenfleet modules ``name`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                # ``from x import y`` imports module x.y if there is one, else x (y is a
                # name in x); a parent package runs anyway and is not counted, as for
                # ``import x.y``
                submodule = f"{origin}.{alias.name}"
                targets.add(submodule if submodule in known else origin)
    return {t for t in targets if t in known and t != name}


def import_graph(root: Path = SRC) -> Graph:
    """Module → the tokenfleet modules it imports."""
    found = modules(root)
    known = set(found)
    return {name: _imports(name, path, known) for name, path in found.items()}


def violations(graph: Graph) -> list[str]:
    """Each import that breaks a rule of ``FORBIDDEN``, as ``"a imports b"``."""
    broken = []
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            for low, high in FORBIDDEN:
                if _under(importer, low) and _under(target, high):
                    broken.append(f"{importer} imports {target}")
    return broken


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # the graph is a few hundred modules: recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


# --------------------------------------------------------------------------- the checker


def test_the_checker_finds_broken_rules_and_cycles() -> None:
    graph: Graph = {
        "tokenfleet.stores.redis": {"tokenfleet._manager.backoff", "tokenfleet._util.tasks"},
        "tokenfleet._client.http": {"tokenfleet._manager.manager", "tokenfleet._models"},
        "tokenfleet._util.tasks": {"tokenfleet._models"},
        "tokenfleet._manager.backoff": {"tokenfleet._manager.manager"},
        "tokenfleet._manager.manager": {"tokenfleet._manager.otel", "tokenfleet._client.http"},
        "tokenfleet._manager.otel": {"tokenfleet._manager.manager"},
        "tokenfleet._models": set(),
    }
    assert violations(graph) == [
        "tokenfleet._client.http imports tokenfleet._manager.manager",
        "tokenfleet._util.tasks imports tokenfleet._models",
        "tokenfleet.stores.redis imports tokenfleet._manager.backoff",
    ]
    assert cycles(graph) == [
        ["tokenfleet._client.http", "tokenfleet._manager.manager", "tokenfleet._manager.otel"]
    ]
    assert violations({"tokenfleet._manager.x": {"tokenfleet._client.y"}}) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_parser_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "tokenfleet"
    (package / "_util").mkdir(parents=True)
    (package / "stores").mkdir()
    (package / "_manager").mkdir()
    for init in ("", "_util/", "stores/", "_manager/"):
        (package / f"{init}__init__.py").write_text("")
    (package / "_models.py").write_text("")
    (package / "_manager" / "manager.py").write_text("")
    (package / "_util" / "tasks.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .._models import Token\n"
    )
    (package / "stores" / "redis.py").write_text(
        "def later():\n    from .._manager import manager\n"
    )
    (package / "stores" / "file.py").write_text("import tokenfleet.stores.redis\n")
    graph = import_graph(tmp_path)
    assert graph["tokenfleet.stores.redis"] == {"tokenfleet._manager.manager"}
    assert graph["tokenfleet.stores.file"] == {"tokenfleet.stores.redis"}
    assert violations(graph) == [
        "tokenfleet._util.tasks imports tokenfleet._models",
        "tokenfleet.stores.redis imports tokenfleet._manager.manager",
    ]


# --------------------------------------------------------------------------- the package


def test_the_package_keeps_its_layers() -> None:
    graph = import_graph()
    assert "tokenfleet._manager.manager" in graph  # the walk found the package
    assert violations(graph) == []


def test_the_package_has_no_import_cycles() -> None:
    assert cycles(import_graph()) == []
