"""pytest plugin (entry point ``tokenfleet``): the ``tokenfleet_server`` fixture.

The server runs in a background thread with its own event loop, so the fixture works
with any async test framework and any event-loop scope, and with synchronous tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._server import DevAuthServer


@pytest.fixture
def tokenfleet_server() -> Iterator[DevAuthServer]:
    """A running `DevAuthServer` (in a background thread), stopped after the test."""
    with DevAuthServer().run_in_thread() as server:
        yield server
