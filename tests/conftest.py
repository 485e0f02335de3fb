"""Shared test settings."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# The machine is small and shared (2 cores): no per-example deadline, and no health check
# that fails a test because data generation was slow while another process ran.
settings.register_profile(
    "tokenfleet", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("tokenfleet")
