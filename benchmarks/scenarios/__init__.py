"""Benchmark scenarios, one module each. ``measure.py`` runs one in a fresh process."""
