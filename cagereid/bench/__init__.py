"""Benchmarks (speed and memory tables); never run by the tests."""
