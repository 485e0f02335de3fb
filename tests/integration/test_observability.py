"""Events, logs and OpenTelemetry metrics of a TokenManager, against the dev server."""

from __future__ import annotations

import logging
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import helpers
from tokenfleet import Event, FileStore, Refresh, Retry, TokenManager
from tokenfleet.testing import DevAuthServer, Fault

# one request per fetch: the events counted below follow from single failures
client_for = partial(helpers.client_for, retry=Retry(attempts=1))


async def test_events_for_fetch_failure_stale_and_cooldown(
    idp: DevAuthServer, tmp_path: Path
) -> None:
    import asyncio

    idp.token_lifetime = 8.0
    events: list[Event] = []
    manager = TokenManager(
        client_for(idp),
        store=FileStore(tmp_path / "t"),
        min_backoff=5,
        refresh=Refresh(jitter=0),
        telemetry=False,
    )
    unsubscribe = manager.subscribe(events.append)
    manager.subscribe(lambda event: 1 / 0)  # a broken hook must not break anything
    async with manager:
        token = await manager.get_token()
        idp.inject_fault(Fault(status=503))
        # past the refresh point (6.4 s), usable until 7.2 s: 0.7 s of slack for a busy box
        await asyncio.sleep(6.5)
        for _ in range(50):
            assert await manager.get_token() is token
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)
        for _ in range(50):
            assert await manager.get_token() is token
    unsubscribe()
    kinds = [e.kind for e in events]
    assert kinds[0] == "token_fetched"
    assert "cooldown_entered" in kinds
    assert kinds.count("fetch_failed") == 1
    assert kinds.count("stale_served") == 1  # once per failed attempt, not per call
    fetched = events[0]
    assert fetched.fingerprint == token.fingerprint
    assert fetched.client_id == idp.client_id
    assert fetched.latency is not None and fetched.latency > 0
    failed = next(e for e in events if e.kind == "fetch_failed")
    assert failed.error is not None and failed.error.startswith("ServerError")
    assert failed.retry_in is not None and failed.retry_in >= 4
    for event in events:
        assert token.access_token not in repr(event)
        assert idp.client_secret not in repr(event)


async def test_one_info_line_per_fetch(
    idp: DevAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tokenfleet"):
        async with TokenManager(client_for(idp), telemetry=False) as manager:
            token = await manager.get_token()
            for _ in range(100):
                await manager.get_token()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1
    assert token.fingerprint in lines[0]
    assert idp.client_id in lines[0]
    assert "lifetime 3600 s" in lines[0]
    assert token.access_token not in caplog.text


async def test_opentelemetry_metrics(idp: DevAuthServer) -> None:
    from opentelemetry import metrics

    # The global provider can be set once per process; other tests' managers may have
    # created the (process-wide) instruments through the API's proxy already.
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    def collect() -> dict[str, Any]:
        values: dict[str, Any] = {}
        data = reader.get_metrics_data()  # None before any instrument has data
        for resource in data.resource_metrics if data is not None else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes)
                        if attributes.get("tokenfleet.client_id") != idp.client_id:
                            continue
                        outcome = attributes.get("tokenfleet.outcome")
                        name = f"{metric.name}:{outcome}" if outcome else metric.name
                        value = getattr(point, "value", getattr(point, "count", 0))
                        values[name] = values.get(name, 0) + value
                        assert all(len(str(v)) < 200 for v in attributes.values())
        return values

    before = collect()
    async with TokenManager(client_for(idp)) as manager:
        for _ in range(10):
            await manager.get_token()
        after = collect()

    def delta(name: str) -> Any:
        return after.get(name, 0) - before.get(name, 0)

    assert delta("tokenfleet.tokens.fetched") == 1
    assert delta("tokenfleet.token_endpoint.duration") == 1  # one histogram sample
    assert after["tokenfleet.get_token.calls:hits"] >= 9
    assert after["tokenfleet.get_token.calls:fetches"] >= 1


def test_no_opentelemetry_no_cost() -> None:
    """Without opentelemetry installed tokenfleet imports and runs, and never loads it."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import asyncio, tokenfleet\n"
        "from tokenfleet._manager import otel as _otel\n"
        "assert not _otel.available()\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
