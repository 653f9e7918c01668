"""benchmarks/import_dump.py at a tiny size: one JSON document with peak memory and rates per dump size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_dump_benchmark_prints_one_document(tmp_path):
    args = ["--prompts", "32", "--prompts-per-step", "16", "--epochs", "1", "2", "--rounds", "1"]
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/import_dump.py"), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    doc = json.loads(out.stdout)
    res = doc["results"]
    assert doc["benchmark"] == "import_dump" and res["steps_per_epoch"] == 2
    assert res["epochs_1"]["events"] == 32 * 8 and res["epochs_2"]["events"] == 2 * 32 * 8
    for key in ("epochs_1", "epochs_2"):
        assert res[key]["peak_rss_mib"]["median"] > 0 and res[key]["events_per_second"]["median"] > 0
