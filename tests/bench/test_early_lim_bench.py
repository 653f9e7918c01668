"""benchmarks/early_lim.py end to end at a tiny size: one JSON document, every predictor at every k, the plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_early_lim_benchmark_prints_one_document_and_draws_f1_vs_k(tmp_path):
    png = tmp_path / "f1.png"
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/early_lim.py"), "--sim-prompts", "60", "--sim-seeds", "1"]
        + ["--sim-epochs", "6", "--replay-draws", "5", "--plot", str(png)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    doc = json.loads(out.stdout)
    res = doc["results"]
    assert doc["benchmark"] == "early_lim" and doc["meta"]["machine_before"]["loadavg"]
    assert set(res["summary"]) == {
        "sim-paper-s0",
        "sim-late-s0",
        "sim-slow-s0",
        "sim-gappy-s0",
        "openrlhf",
        "demo-synthetic",
    }
    for name, rows in res["rows"].items():
        epochs = res["summary"][name]["epochs"]
        got = {(r["predictor"], r["epochs_seen"]) for r in rows}
        assert got == {(p, k) for p in ("seen", "ravg", "trend", "learned") for k in range(1, epochs)}, name
        assert all(0 <= r["rollouts_saved"] < 1 for r in rows)
        replay = res["summary"][name]["replay_f1_by_k"]
        assert len(replay) == epochs - 1 and all(0 < f <= 1 for f in replay), name
    assert png.stat().st_size > 10_000
