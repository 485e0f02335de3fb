"""Chaos-test fixtures: a loop watch that fails the test on any unhandled loop error,
and a leak check that no task outlives the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chaos_harness import LoopWatch, other_tasks


@pytest.fixture
async def loop_watch() -> AsyncIterator[LoopWatch]:
    """Fails the test if the loop reported anything, or if a task outlived the test body."""
    watch = LoopWatch().install()
    yield watch
    leaked = await other_tasks()
    assert not leaked, f"leaked tasks: {leaked}"
    assert not watch.problems(), watch.problems()
