"""Every public name is exported once, sorted, and documented (as httpx checks)."""

from __future__ import annotations

import subprocess
import sys

import tokenfleet


def test_all_is_sorted_unique_and_resolves() -> None:
    names = tokenfleet.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(tokenfleet, name), name


def test_public_names_come_from_private_modules() -> None:
    for name in tokenfleet.__all__:
        value = getattr(tokenfleet, name)
        module = getattr(value, "__module__", "tokenfleet")
        assert module.startswith("tokenfleet"), (name, module)


def test_public_classes_have_docstrings() -> None:
    for name in tokenfleet.__all__:
        value = getattr(tokenfleet, name)
        if isinstance(value, type):
            assert value.__doc__ and value.__doc__.strip(), name


def test_errors_share_one_base() -> None:
    errors = [getattr(tokenfleet, n) for n in tokenfleet.__all__]
    errors = [e for e in errors if isinstance(e, type) and issubclass(e, Exception)]
    assert len(errors) > 10
    assert all(issubclass(e, tokenfleet.TokenFleetError) for e in errors)


def test_import_without_optional_extras() -> None:
    """Importing tokenfleet must not need httpx (an optional extra)."""
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import tokenfleet, tokenfleet.stores, tokenfleet.testing\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
