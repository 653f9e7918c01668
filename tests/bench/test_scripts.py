"""Every script in benchmarks/ prints exactly one JSON document on stdout (`python benchmarks/X.py | jq .` works).

Each runs as a user would run it, as a subprocess at tiny sizes; stdout must parse as JSON as a whole, so a
single stray log line from vLLM, Ray or limr fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    p.name for p in (REPO / "benchmarks").glob("*.py") if p.name not in ("__init__.py", "harness.py", "report.py")
)
COVERED = {"early_lim.py", "lim_scoring.py", "rollout.py", "services.py", "train_step.py", "weight_sync.py"}


def _run(script: str, *args: str, timeout: int = 600) -> dict:
    cmd = [sys.executable, str(REPO / "benchmarks" / script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(proc.stdout)  # the whole of stdout: one document, nothing else
    assert doc["benchmark"] == script.removesuffix(".py")
    assert doc["meta"]["command"][1].endswith(script) and doc["meta"]["machine_after"]["loadavg"]
    return doc["results"]


def test_every_script_is_covered_here() -> None:
    """A new benchmark script gets a JSON test below (or the other engineer's own test module)."""
    others = {p.name.removeprefix("test_bench_") for p in Path(__file__).parent.glob("test_bench_*.py")}
    missing = sorted(set(SCRIPTS) - COVERED - others)
    assert not missing, (
        f"{missing} have no JSON test: add tests/bench/test_bench_<script>.py that runs the script at tiny sizes "
        "and parses its whole stdout with json.loads (as _run below does)"
    )


def test_lim_scoring_json() -> None:
    r = _run("lim_scoring.py", "--prompts", "300", "--epochs", "3", "--steps-per-epoch", "2", "--rounds", "1")
    assert r["events"] == 300 * 3 * 8 and r["scores_agree"] is True
    assert r["limr"]["prompts_scored"] == r["baseline"]["prompts_scored"] == 300
    assert r["limr_score_cli"]["lines_written"] == 300
    assert r["speedup_vs_baseline"]["rounds"] and r["limr"]["seconds"]["min"] > 0


def test_early_lim_json(tmp_path: Path) -> None:
    args = ["--sim-prompts", "60", "--sim-epochs", "4", "--sim-seeds", "1", "--no-learned"]
    r = _run("early_lim.py", *args, "--plot", str(tmp_path / "f1.png"))
    assert r["threshold"] == 0.6 and r["rows"]


def test_services_json() -> None:
    r = _run(
        "services.py",
        *("--prompts", "160", "--steps-per-epoch", "2", "--backlog-objects", "6", "--steady-objects", "4"),
        *("--rate", "20", "--query-rate", "40", "--query-seconds", "1", "--rounds", "2"),
    )
    assert r["store"] == "file" and r["query_errors"] == 0 and r["query_requests"] == 40
    assert len(r["catchup_events_per_s"]["rounds"]) == 2 and r["lag_max_s"] >= r["lag_p50_s"] >= 0


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.ray
def test_rollout_json() -> None:
    r = _run("rollout.py", "--sizes", "tiny", "--shapes", "2x2x8", "--prompts", "2", "--n", "2", "--max-tokens", "8",
             "--rounds", "1")  # fmt: skip
    assert r["service"]["batch"]["tokens_per_batch"] == 32
    assert set(r["service"]["tokens_per_s"]) == {"engine", "service_http", "service_handle"}
    (row,) = r["engine_vs_generate"]
    assert row["model"] == "tiny" and row["batch"]["sequences"] == 4
    assert row["faster"] in ("engine", "generate", "neither (rounds disagree)")


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.ray
def test_train_step_json() -> None:
    small = (
        "batch.rollout_batch_size=4",
        "rollout.samples_per_prompt=4",
        "batch.train_batch_size=16",
        "batch.micro_batch_size=16",
    )
    r = _run("train_step.py", "--steps", "1", "--warmup", "0", *(a for kv in small for a in ("--set", kv)))
    assert r["timed_steps"] == 1 and r["seconds_per_step"]["total"]["median"] > 0
    assert set(r["seconds_per_step"]) >= {"rollout", "reward", "update"}
    # TRL's GRPOTrainer ran the same step (4 prompts x 4 samples) in the same run
    peer = r["peer"]
    assert peer["name"] == "trl" and peer["timed_steps"] == 1 and peer["samples_per_step"] == r["samples_per_step"]
    assert peer["samples_per_second"]["median"] > 0 and r["limr_vs_trl_samples_per_second"]["median"] > 0


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.ray
def test_weight_sync_json() -> None:
    r = _run("weight_sync.py", "--models", "tiny", "--rounds", "1")
    assert set(r) == {"tiny"} and r["tiny"]["replicas_serve_last_version"] is True
