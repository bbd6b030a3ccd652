"""Benchmark harness smoke tests."""
