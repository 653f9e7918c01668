"""`limr experiment --quick` end to end: every output file, LIM/RAND pools read through the dataset API, and a
second invocation that reuses every finished run from the store instead of training again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def _run(store: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "limr", "experiment", "--quick", "--store", str(store), "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~6 min on an idle 2-core machine; a loaded one (parallel test runs) takes longer
def test_quick_experiment_end_to_end(tmp_path):
    store, out = tmp_path / "store", tmp_path / "out"
    # a report of finished runs only, before any run finished: one line saying so (the warm start it built is
    # the one the study below reuses)
    early = _run(store, out, "--finished-only")
    assert early.returncode == 2 and "nothing to report: FULL's source run tiny-full-s0 has not finished" in (
        early.stdout + early.stderr
    ), early.stdout[-3000:] + early.stderr[-3000:]
    first = _run(store, out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "logs: " in first.stdout and "goal:" in first.stdout

    for name in ("results.json", "results.md", "accuracy_vs_step.png", "accuracy_vs_tokens.png",
                 "lim_trajectories.png", "score_histogram.png", "leaderboard.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG
    r = json.loads((out / "results.json").read_text())
    arms = {a["name"]: a for a in r["arms"]}
    assert set(arms) == {"full", "lim", "rand", "dynamic"}
    assert arms["lim"]["pool_size"] == arms["rand"]["pool_size"] == r["lim"]["selected"]
    for a in arms.values():
        assert a["steps"][0] == 0 and a["steps"][-1] == r["steps"]
        assert len(a["acc_mean"]) == len(a["steps"]) and a["total_tokens_mean"] > 0
    # dynamic sampling counts the tokens of the groups it dropped as well
    assert arms["dynamic"]["total_tokens_mean"] > 0
    # LIM and RAND read their pools through the dataset API, by name and version
    pools = r["api"]["pools"]
    assert pools["tiny-lim-s0"] == r["lim"]["version"] and pools["tiny-lim-s0"].startswith("dataset://tiny-lim@")
    assert pools["tiny-rand-s0"] == r["rand"]["version"] and pools["tiny-rand-s0"].startswith("dataset://tiny-rand@")
    assert not pools["tiny-full-s0"].startswith("dataset://")
    assert r["api"]["data_downloads"] >= 2
    assert "| lim |" in (out / "results.md").read_text()
    # every run recorded its final per-problem results, so the leaderboard is paired on problems and seeds
    assert len(r["final_problems"]) == r["held_out"]
    assert all(len(bits) == 1 and len(bits[0]) == r["held_out"] for bits in r["final_correct"].values())
    lb = r["leaderboard"]
    assert lb["method"].startswith("paired") and {row["arm"] for row in lb["rows"]} == set(arms)
    lim_row = next(row for row in lb["rows"] if row["arm"] == "lim")
    assert lim_row["vs_rand"]["pairing"] == "paired on seeds [0]" and lim_row["selection_rollouts"] > 0
    assert "## Leaderboard" in (out / "results.md").read_text() and "leaderboard" in first.stdout

    # resumable: everything is in the store, so nothing trains again and the results are the same
    second = _run(store, out)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    r2 = json.loads((out / "results.json").read_text())
    assert sorted(r2["reused_runs"]) == sorted(pools)
    assert [a["final_mean"] for a in r2["arms"]] == [a["final_mean"] for a in r["arms"]]

    # a study reported part-way: with a curated arm's run (RAND) gone from the store, --finished-only trains
    # nothing and reports the other arms, unchanged
    from limr.experiment.arms import clear_run
    from limr.store import open_store

    assert clear_run(open_store(str(store)), "tiny-rand-s0") > 0
    part = _run(store, out, "--finished-only")
    assert part.returncode == 0, part.stdout[-3000:] + part.stderr[-3000:]
    assert "reporting 3 of 4 runs; not finished: tiny-rand-s0" in part.stdout
    r3 = json.loads((out / "results.json").read_text())
    assert [a["name"] for a in r3["arms"]] == ["full", "lim", "dynamic"]
    assert [a["final_mean"] for a in r3["arms"]] == [a["final_mean"] for a in r["arms"] if a["name"] != "rand"]
    assert set(r3["composition"]["arms"]) == {"lim"} and "lim_minus_rand" not in r3["verdict"]
