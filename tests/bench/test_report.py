"""The README's benchmark figures are the stored results' figures (benchmarks/report.py renders them)."""

from __future__ import annotations

import json

from benchmarks.report import README, RENDERERS, RESULTS, readme_block, render


def test_readme_block_is_rendered_from_stored_results() -> None:
    """Fails when README.md and benchmarks/results/*.json drift: rerun `make bench` (or report.py --write)."""
    assert readme_block(README.read_text()) == render(), "run: python benchmarks/report.py --write"


def test_every_quoted_benchmark_has_a_stored_result_with_its_provenance() -> None:
    stored = {p.stem: json.loads(p.read_text()) for p in RESULTS.glob("*.json")}
    assert set(RENDERERS) <= set(stored), f"missing results: {set(RENDERERS) - set(stored)} (run make bench)"
    for name, doc in stored.items():
        meta = doc["meta"]
        assert meta["git"]["commit"] and meta["machine_before"]["loadavg"] and meta["machine_after"]["loadavg"], name
        assert meta["versions"]["torch"] and meta["command"], name
