"""Evaluation harness (`limr eval`): benchmarks with the paper's sampling protocol, scored by `limr.reward`."""
