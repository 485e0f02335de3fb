"""Optional OpenTelemetry metrics and spans (``pip install tokenfleet[otel]``).

Only ``opentelemetry-api`` is used, so without an SDK configured by the application the
instruments are no-ops. Without the package, nothing here is imported and nothing costs
anything. The hot path is never touched: counts of calls are read from each manager's
``stats`` by one observable counter when the exporter asks, and everything else comes
from events (fetches, failures), which are off the hot path.

The instruments exist once per process (an instrument name registered twice is ignored
by the SDK), and the telemetry of each manager alive is tracked in a weak set.
Attributes are the client id and the cache key; never a token or a secret.
"""

from __future__ import annotations

import importlib.util
import weakref
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from .events import Event, Events
from .stats import Stats

__all__ = ["Telemetry", "available"]

_OUTCOMES = ("hits", "misses", "fetches", "fetch_errors", "stale_served", "store_errors")


def available() -> bool:
    """Whether ``opentelemetry-api`` can be imported."""
    return importlib.util.find_spec("opentelemetry") is not None


class _Instruments:
    """The process-wide instruments, created on first use."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace

        from .._version import __version__

        meter = metrics.get_meter("tokenfleet", __version__)
        self.tracer: Any = trace.get_tracer("tokenfleet", __version__)
        self.live: weakref.WeakSet[Telemetry] = weakref.WeakSet()
        self.fetched: Any = meter.create_counter(
            "tokenfleet.tokens.fetched", unit="{token}", description="Tokens fetched"
        )
        self.failed: Any = meter.create_counter(
            "tokenfleet.fetch.errors", unit="{error}", description="Failed token fetches"
        )
        self.latency: Any = meter.create_histogram(
            "tokenfleet.token_endpoint.duration",
            unit="s",
            description="Time to get a token from the token endpoint",
        )
        meter.create_observable_counter(
            "tokenfleet.get_token.calls",
            callbacks=[self._observe],
            unit="{call}",
            description="get_token calls by outcome (hits, misses, ...), from manager.stats",
        )

    def _observe(self, _options: Any) -> Iterable[Any]:
        from opentelemetry.metrics import Observation

        totals: dict[tuple[str, str], int] = {}
        for telemetry in list(self.live):  # summed per client id
            client_id = telemetry.client_id
            for outcome in _OUTCOMES:
                key = (client_id, outcome)
                totals[key] = totals.get(key, 0) + getattr(telemetry.stats, outcome)
        return [
            Observation(value, {"tokenfleet.client_id": client_id, "tokenfleet.outcome": outcome})
            for (client_id, outcome), value in totals.items()
        ]


_instruments: _Instruments | None = None


def _get_instruments() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


class Telemetry:
    """The OpenTelemetry side of one manager: its ``stats`` are observed, its ``events``
    counted; it lives as long as the manager that holds it (and its events)."""

    def __init__(self, client_id: str | None, stats: Stats, events: Events) -> None:
        self._instruments = _get_instruments()
        self.client_id = client_id or ""
        self.stats = stats
        self._instruments.live.add(self)
        events.subscribe(self._on_event)

    def span(self, key: str) -> AbstractContextManager[Any]:
        """A span around one fetch from the source."""
        span: AbstractContextManager[Any] = self._instruments.tracer.start_as_current_span(
            "tokenfleet.fetch_token",
            attributes={"tokenfleet.client_id": self.client_id, "tokenfleet.key": key},
        )
        return span

    def _on_event(self, event: Event) -> None:
        attributes = {"tokenfleet.client_id": self.client_id, "tokenfleet.key": event.key}
        if event.kind == "token_fetched":
            self._instruments.fetched.add(1, attributes)
            if event.latency is not None:
                self._instruments.latency.record(event.latency, attributes)
        elif event.kind == "fetch_failed":
            self._instruments.failed.add(1, attributes)
