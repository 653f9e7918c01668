"""`limr demo` and its reusable parts: synthetic run -> score -> select -> table and plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from limr.algo.selection import Criterion, select_lim
from limr.cli.main import app
from limr.demo import plot_trajectories, report, write_synthetic_run
from limr.events.run import run_finished
from limr.scoring import score_run
from limr.store import open_store


def test_synthetic_run_ranks_learnable_prompts_first(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    syn = write_synthetic_run(store, "syn", num_prompts=400, epochs=8, samples=8, seed=1)
    result = score_run(store, "syn")
    assert run_finished(store, "syn").epochs == 8  # the demo's run is finished: the scorer publishes final
    assert result.events == syn.events and len(result) + len(result.left_out) == 400
    by_profile: dict[str, list[float]] = {}
    for pid, s in zip(result.prompt_ids, result.scores, strict=True):
        by_profile.setdefault(syn.profiles[pid], []).append(s)
    mean = {k: sum(v) / len(v) for k, v in by_profile.items()}
    assert mean["learnable"] > max(mean[k] for k in ("easy", "hard", "noisy", "forgotten"))
    selected = [result.prompt_ids[i] for i in select_lim(result.scores, Criterion(threshold=0.6))]
    text, summary = report(result, selected, syn.profiles)
    assert "learnable" in text and summary["selected"] == len(selected)
    learn = next(g for g in summary["groups"] if g["group"] == "learnable")
    assert learn["selected"] > 0.5 * len(selected)
    # per group, kept and dropped with their accuracy at the first and last epoch: the kept learnable prompts rose
    assert learn["selected"] + learn["dropped"] == learn["scored"]
    assert learn["kept_accuracy"]["last"] - learn["kept_accuracy"]["first"] > 0.5
    easy = next(g for g in summary["groups"] if g["group"] == "easy")
    assert easy["dropped_accuracy"]["first"] > 0.85 and "r_avg per epoch" in text
    png = plot_trajectories(result, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_demo_command(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["demo", "--synthetic-only", "--store", str(tmp_path / "s"), "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--prompts", "300", "--epochs", "6", "--run", "d1"])
    assert res.exit_code == 0, res.output
    assert "LIM selection of run d1" in res.output and "learnable" in res.output
    # a quiet terminal: a handful of lines, the first names the log file, and it ends with the result: the
    # selection table, then what was written
    lines = res.output.splitlines()
    assert lines[0] == f"logs: {out / 'limr-demo.log'} (--verbose shows them here)" and len(lines) < 30
    table = next(i for i, line in enumerate(lines) if "LIM selection of run d1" in line)
    assert lines[-2].startswith("selected ") and "lim_trajectories.png" in lines[-1], lines[table:]
    assert "score_histogram.png" in lines[-1] and (out / "score_histogram.png").stat().st_size > 10_000
    assert any(line.startswith("LIM kept ") for line in lines) and any(line.startswith("why: ") for line in lines)
    assert (out / "limr-demo.log").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run_id"] == "d1" and summary["scored"] + summary["left_out"] == 300
    assert len((out / "selected.jsonl").read_text().splitlines()) == summary["selected"]
    assert (out / "lim_trajectories.png").stat().st_size > 10_000
    # the study's finding and how to run it come first, before this run's result
    assert any("limr experiment --quick" in line for line in lines[:table])
    # Runs are immutable: the same run id again is refused with a clear error.
    again = CliRunner().invoke(app, [*args, "--run", "d1"])
    assert again.exit_code == 2 and "already exists" in again.output


@pytest.mark.slow  # init-tiny, 5 SFT steps, 2 epochs of 16 prompts x 2 samples in one process (--local)
def test_trained_demo_end_to_end(tmp_path: Path) -> None:
    """The training demo's whole path, small: the study's pool mix and warm start settings (built by
    limr.experiment.inputs), the learner, then the selection table per skill, the why line and both plots."""
    out = tmp_path / "out"
    args = ["demo", "--local", "--store", str(tmp_path / "s"), "--out", str(out), "--run", "e2e"]
    small = ["--prompts", "16", "--epochs", "2", "--samples", "2", "--sft-steps", "5", "--eval-prompts", "8"]
    res = CliRunner().invoke(app, [*args, *small])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scored"] + summary["left_out"] == 16 and len(summary["r_avg"]) == 2
    skills = {g["group"]: g for g in summary["groups"]}
    assert {k: v["prompts"] for k, v in skills.items()} == {"add-1x1": 8, "add-1x2": 6, "add-2x1": 2}
    assert all(g["selected"] + g["dropped"] == g["scored"] for g in skills.values())
    assert "add-1x2" in res.output and any(line.startswith("why: ") for line in res.output.splitlines())
    assert (out / "models" / "sft5-n600-l1-c0.2-s0" / "tiny-sft" / "config.json").is_file()  # the study's layout
    assert len((out / "data" / "held_out.jsonl").read_text().splitlines()) == 8
    assert (out / "score_histogram.png").is_file() and (out / "lim_trajectories.png").is_file()
    assert summary["training"]["eval/accuracy_initial"] is not None


def test_trained_demo_prints_before_and_after() -> None:
    from limr.cli.demo import _before_after

    metrics = {
        "train/reward_mean_initial": -0.25,
        "train/reward_mean": 0.08,
        "train/accuracy_initial": 0.169,
        "train/accuracy": 0.388,
        "eval/accuracy_initial": 0.39,
        "eval/accuracy": 0.48,
    }
    line = _before_after(metrics, 200)
    assert "training reward -0.250 -> +0.080" in line and "training accuracy 16.9% -> 38.8%" in line
    assert "held-out greedy accuracy 39.0% -> 48.0% (200 problems)" in line
    assert "held-out greedy accuracy n/a" in _before_after({}, 0)


def test_trained_demo_runs_in_the_studys_regime() -> None:
    """The demo's warm start and pool mix are the study's (configs/experiment-tiny.yaml), only the pool is smaller:
    a warm start of fewer SFT steps puts r_avg below 0.4, where LIM keeps the hard prompts (docs/experiment.md)."""
    from limr.demo.training import DemoTrainingOptions
    from limr.experiment.config import load_experiment

    study = load_experiment(Path(__file__).resolve().parents[2] / "configs" / "experiment-tiny.yaml")
    opts = DemoTrainingOptions()
    assert opts.warm_start().model_dump() == study.warm_start.model_dump()
    mix = opts.pool().mix
    assert mix is not None and study.pool.mix is not None
    assert mix.shares == study.pool.mix.shares and mix.held_out_shares == study.pool.mix.held_out_shares
    assert mix.seed == study.pool.mix.seed and mix.size <= study.pool.mix.size
    assert opts.epochs == study.epochs and opts.samples == study.learner_overrides["rollout.samples_per_prompt"]
    assert opts.rollout_batch == study.learner_overrides["batch.rollout_batch_size"]


def test_why_line_names_the_regime() -> None:
    """A never-solved prompt scores 1 - sum r_avg^2 / sum (1 - r_avg)^2: below 0.6 once r_avg is near 0.5."""
    import numpy as np

    from limr.demo.report import extreme_scores, why_line

    assert extreme_scores(np.full(5, 0.5)) == (0.0, 0.0)
    assert abs(extreme_scores(np.full(5, 0.2))[1] - (1 - 0.04 / 0.64)) < 1e-12
    assert "both below 0.6" in why_line(np.array([0.49, 0.52, 0.54, 0.57, 0.59]), 0.6)
    assert "unsolved prompts clear 0.6" in why_line(np.array([0.17, 0.25, 0.3, 0.35, 0.39]), 0.6)


def test_demo_refuses_a_model_that_is_not_one(tmp_path: Path) -> None:
    """A --model without config.json is a one-line error before anything starts, not a failed Serve deployment."""
    args = ["demo", "--model", str(tmp_path / "nope"), "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "not a HuggingFace model directory" in res.output


def test_trajectory_plot_draws_a_shared_line_once_with_its_count() -> None:
    """Thirty never-solved prompts are one flat line at 0: the plot's low group shows it once (x30) and then the
    other shapes LIM drops, instead of four copies of the same line hiding each other."""
    from limr.view.plots import distinct_trajectories

    flat0 = np.zeros((30, 4))
    flat1 = np.ones((5, 4))
    learning = np.array([[0.2, 0.4, 0.6, 0.8], [0.1, 0.5, 0.5, 0.9]])
    falling = np.array([[0.9, 0.6, 0.3, 0.1]])
    traj = np.vstack([learning, flat0, flat1, falling])
    scores = np.array([0.9, 0.8] + [-0.5] * 30 + [0.0] * 5 + [-0.9])
    low = distinct_trajectories(traj, np.argsort(scores, kind="stable"), 3)
    assert [(traj[i].tolist(), n) for i, n in low] == [
        (falling[0].tolist(), 1),
        ([0.0] * 4, 30),
        ([1.0] * 4, 5),
    ]
    high = distinct_trajectories(traj, np.argsort(-scores, kind="stable"), 10)
    assert len(high) == 5 and sum(n for _, n in high) == len(traj)
