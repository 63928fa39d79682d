"""Benchmark programs: each prints its measurements as JSON (no timed assertions)."""
