"""The manager layer: ``TokenManager`` and its parts.

Near cache, single flight, refresh policy, backoff, fleet signals, events, stats and
OpenTelemetry. It wraps any token source and keeps tokens in any store; see
docs/architecture.md for the data path. This package re-exports nothing.
"""
