"""Benchmark harness comparing vtool with DVC; entry point is scripts/bench."""
