"""pytest plugin (entry point ``tokenfleet``): the ``tokenfleet_server`` fixture, and
``tokenfleet_server_factory`` for servers with other settings.

Each server runs in a background thread with its own event loop, so the fixtures work
with any async test framework and any event-loop scope, and with synchronous tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._server import DevAuthServer


@pytest.fixture
def tokenfleet_server_factory() -> Iterator[Callable[..., DevAuthServer]]:
    """``tokenfleet_server_factory(**options)``: a running ``DevAuthServer(**options)``
    (``token_lifetime=``, ``latency=``, ``issuer_path=``, ...) in a background thread.

    Call it as often as the test needs; every server it started is stopped after the test.
    """
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> DevAuthServer:
            return stack.enter_context(DevAuthServer(**options).run_in_thread())

        yield start


@pytest.fixture
def tokenfleet_server(
    tokenfleet_server_factory: Callable[..., DevAuthServer],
) -> DevAuthServer:
    """A running `DevAuthServer` (in a background thread), stopped after the test."""
    return tokenfleet_server_factory()
