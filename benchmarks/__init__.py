"""Benchmarks of limr: scripts that print one JSON document each (see harness.py)."""
