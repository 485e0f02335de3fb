"""Every public name is exported once, sorted, and documented (as httpx checks)."""

from __future__ import annotations

import inspect
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


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_integrations_are_attributes_after_a_bare_import() -> None:
    """``import tokenfleet`` then ``tokenfleet.aiohttp.BearerAuth(...)``, as the README does."""
    code = (
        "import sys, tokenfleet\n"
        "assert 'tokenfleet.httpx' not in sys.modules  # lazily, on first access\n"
        "client = tokenfleet.ClientCredentials('http://127.0.0.1:1/token', client_id='c',"
        " client_secret='s')\n"
        "tokens = tokenfleet.TokenManager(client)\n"
        "print(type(tokenfleet.aiohttp.BearerAuth(tokens)).__name__)\n"
        "print(type(tokenfleet.httpx.BearerAuth(tokens)).__name__)\n"
        "print(tokenfleet.testing.DevAuthServer.__name__)\n"
        "print('aiohttp' in dir(tokenfleet))\n"
    )
    result = _fresh(code)
    assert result.stdout.split() == ["BearerAuth", "BearerAuth", "DevAuthServer", "True"], (
        result.stderr
    )


def test_httpx_attribute_without_httpx_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import tokenfleet\n"
        "try:\n"
        "    tokenfleet.httpx\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "try:\n"
        "    tokenfleet.nope\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    result = _fresh(code)
    assert "pip install tokenfleet[httpx]" in result.stdout, result.stderr
    assert "has no attribute 'nope'" in result.stdout


def test_public_names_report_their_public_module() -> None:
    """Tracebacks and reprs name the public path (as httpx does), not the private one."""
    import tokenfleet.aiohttp
    import tokenfleet.httpx
    import tokenfleet.testing

    for module in (tokenfleet, tokenfleet.testing, tokenfleet.aiohttp, tokenfleet.httpx):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) or inspect.isfunction(value):
                assert value.__module__ == module.__name__, (module.__name__, name)
    assert repr(tokenfleet.TokenManager) == "<class 'tokenfleet.TokenManager'>"
    assert tokenfleet.RedisStore.__module__ == "tokenfleet"
