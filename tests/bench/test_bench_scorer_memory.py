"""benchmarks/scorer_memory.py at a tiny size: one JSON document, every run ingested and finalised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_scorer_memory_benchmark_prints_one_document(tmp_path: Path) -> None:
    args = ["--runs", "3", "--prompts", "20", "--epochs", "2", "--steps-per-epoch", "2"]
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/scorer_memory.py"), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    doc = json.loads(out.stdout)  # the whole of stdout: one document
    res = doc["results"]
    assert doc["benchmark"] == "scorer_memory" and doc["meta"]["machine_after"]["loadavg"]
    assert res["objects"] == res["objects_ingested"] == 3 * 2 * 2
    assert res["final_versions"] == 3 and res["runs_failing"] == 0
    assert res["rss_after_mib"] > 0 and res["python_heap_held_mib"] > 0
