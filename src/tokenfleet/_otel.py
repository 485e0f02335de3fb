"""Optional OpenTelemetry metrics and spans (``pip install tokenfleet[otel]``).

Only ``opentelemetry-api`` is used, so without an SDK configured by the application the
instruments are no-ops. Without the package, nothing here is imported and nothing costs
anything. The hot path is never touched: counts of tokens served are read from
``manager.stats`` by observable counters when the exporter asks, and everything else
comes from events (fetches, failures), which are off the hot path.

Attributes are the client id and the cache key; never a token or a secret.
"""

from __future__ import annotations

import importlib.util
import weakref
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ._events import Event

if TYPE_CHECKING:
    from ._manager import TokenManager

__all__ = ["Telemetry", "available"]

_SERVED = ("hits", "misses", "fetches", "fetch_errors", "stale_served", "store_errors")


def available() -> bool:
    """Whether ``opentelemetry-api`` can be imported."""
    return importlib.util.find_spec("opentelemetry") is not None


class Telemetry:
    """The OpenTelemetry instruments of one manager."""

    def __init__(self, manager: TokenManager) -> None:
        from opentelemetry import metrics, trace

        from . import __version__

        meter = metrics.get_meter("tokenfleet", __version__)
        self._tracer = trace.get_tracer("tokenfleet", __version__)
        self._attributes = {"tokenfleet.client_id": manager.client_id or ""}
        self._fetched = meter.create_counter(
            "tokenfleet.tokens.fetched", unit="{token}", description="Tokens fetched"
        )
        self._failed = meter.create_counter(
            "tokenfleet.fetch.errors", unit="{error}", description="Failed token fetches"
        )
        self._latency = meter.create_histogram(
            "tokenfleet.token_endpoint.duration",
            unit="s",
            description="Time to get a token from the token endpoint",
        )
        owner = weakref.ref(manager)  # the meter must not keep a closed manager alive
        attributes = self._attributes

        def observe(_options: Any) -> Iterable[Any]:
            from opentelemetry.metrics import Observation

            current = owner()
            if current is None:
                return []
            return [
                Observation(
                    getattr(current.stats, name), {**attributes, "tokenfleet.outcome": name}
                )
                for name in _SERVED
            ]

        meter.create_observable_counter(
            "tokenfleet.get_token.calls",
            callbacks=[observe],
            unit="{call}",
            description="get_token calls by outcome (hits, misses, ...), from manager.stats",
        )
        manager.subscribe(self._on_event)

    def span(self, key: str) -> AbstractContextManager[Any]:
        """A span around one fetch from the source."""
        return self._tracer.start_as_current_span(
            "tokenfleet.fetch_token", attributes={**self._attributes, "tokenfleet.key": key}
        )

    def _on_event(self, event: Event) -> None:
        attributes = {**self._attributes, "tokenfleet.key": event.key}
        if event.kind == "token_fetched":
            self._fetched.add(1, attributes)
            if event.latency is not None:
                self._latency.record(event.latency, attributes)
        elif event.kind == "fetch_failed":
            self._failed.add(1, attributes)
