"""The paired bootstrap and the leaderboard, against cases whose answer is known by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from limr.experiment.leaderboard import (
    array_to_bits,
    bits_to_array,
    build_leaderboard,
    from_results,
    leaderboard_markdown,
)
from limr.experiment.plots import plot_leaderboard
from limr.experiment.stats import PAIRED, UNPAIRED, AccuracyBootstrap, PairedBootstrap, first_reach

N = 400


def _first(k: int, seeds: int = 1) -> np.ndarray:
    """(seeds, N): the first k problems right."""
    c = np.zeros((seeds, N))
    c[:, :k] = 1
    return c


def test_identical_and_certain_arms() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random((3, N)) < 0.3).astype(float)
    boot = PairedBootstrap(
        {"a": a, "b": a.copy(), "one": np.ones((3, N))}, {"a": [0, 1, 2], "b": [0, 1, 2], "one": [0, 1, 2]}
    )
    d = boot.difference("a", "b")
    assert (d["mean"], d["lo"], d["hi"], d["separated"]) == (0.0, 0.0, 0.0, False)
    assert boot.arm_interval("one").to_dict() == {"mean": 1.0, "lo": 1.0, "hi": 1.0}


def test_pairing_narrows_a_difference_to_the_problems_that_differ() -> None:
    """A solves the first 200 problems, B the first 180: every redraw differs only in problems 180-199, so the
    paired difference is Binomial(400, 0.05) / 400: sd sqrt(0.05 x 0.95 / 400) = 1.09 points; unpaired, two
    independent accuracies near 0.5 give sd sqrt(2 x 0.25 / 400) = 3.5 points."""
    boot = PairedBootstrap({"a": _first(200), "b": _first(180)}, {"a": [0], "b": [0]}, replicates=4000)
    d = boot.difference("a", "b")
    assert d["mean"] == pytest.approx(0.05) and d["separated"] and "paired on seeds [0]" in d["pairing"]
    assert (d["hi"] - d["lo"]) / 3.92 == pytest.approx(math.sqrt(0.05 * 0.95 / N), rel=0.12)
    arm = boot.arm_interval("a")
    assert arm.mean == 0.5 and (arm.hi - arm.lo) / 3.92 == pytest.approx(math.sqrt(0.25 / N), rel=0.12)
    unpaired = AccuracyBootstrap({"a": [0.5], "b": [0.45]}, {"a": [0], "b": [0]}, N, replicates=4000)
    u = unpaired.difference("a", "b")
    assert u["mean"] == pytest.approx(0.05) and not u["separated"]
    assert (u["hi"] - u["lo"]) / 3.92 == pytest.approx(math.sqrt(2 * 0.25 / N), rel=0.12)


def test_seed_spread_widens_intervals_and_unshared_seeds_are_drawn_independently() -> None:
    # three seeds at 0.2, 0.3, 0.4 of the problems: the seed draw dominates the spread
    c = np.stack([_first(80)[0], _first(120)[0], _first(160)[0]])
    boot = PairedBootstrap({"a": c, "b": c[:1]}, {"a": [0, 1, 2], "b": [7]})
    iv = boot.arm_interval("a")
    assert iv.mean == pytest.approx(0.3) and iv.lo < 0.25 and iv.hi > 0.35
    d = boot.difference("a", "b")
    assert "no common seeds" in d["pairing"] and d["mean"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="different numbers of problems"):
        PairedBootstrap({"a": c, "b": np.ones((1, 3))}, {"a": [0, 1, 2], "b": [0]})
    with pytest.raises(ValueError, match="arm a: 3 rows of results for seeds"):
        PairedBootstrap({"a": c}, {"a": [0]})


def test_noise_sources_split_a_difference_into_problem_and_seed_noise() -> None:
    """Where a paired difference's width comes from. Same gap on every seed: no seed noise, and the problem part
    is the paired binomial of the 20 problems that differ (the same ones on every seed, so 3 seeds do not shrink
    it). A gap that swings by seed (+0.10, 0, -0.10) with the rest identical: the seed draw dominates."""
    same = PairedBootstrap({"a": _first(200, 3), "b": _first(180, 3)}, {"a": [0, 1, 2], "b": [0, 1, 2]}, 4000)
    noise = same.difference("a", "b")["noise"]
    assert noise["seeds"] == 0.0 and noise["per_seed"] == pytest.approx([0.05] * 3)
    assert noise["problems"] / 1.96 == pytest.approx(
        math.sqrt(0.05 * 0.95 / N), rel=0.15
    )  # the same problems on every seed
    a = np.stack([_first(240)[0], _first(200)[0], _first(160)[0]])
    swing = PairedBootstrap({"a": a, "b": _first(200, 3)}, {"a": [0, 1, 2], "b": [0, 1, 2]}, 4000)
    d = swing.difference("a", "b")
    assert d["noise"]["per_seed"] == pytest.approx([0.1, 0.0, -0.1]) and d["mean"] == pytest.approx(0.0)
    assert d["noise"]["seeds"] > 3 * d["noise"]["problems"] and d["hi"] - d["lo"] >= 2 * d["noise"]["seeds"] * 0.9
    # partly shared seeds: each per-seed difference is labelled with the seed it pairs, in a's order
    part = PairedBootstrap({"a": a, "b": _first(200, 2)}, {"a": [0, 1, 2], "b": [2, 0]}).difference("a", "b")["noise"]
    assert part["paired_seeds"] == [0, 2] and part["per_seed"] == pytest.approx([0.1, -0.1])
    # no common seeds: nothing to split (the seeds are drawn independently)
    assert "noise" not in PairedBootstrap({"a": a, "b": a[:1]}, {"a": [0, 1, 2], "b": [7]}).difference("a", "b")


def test_first_reach() -> None:
    assert first_reach([0, 10, 20], [0.5, 0.3, 0.4], 0.4) == 2  # step 0 never counts
    assert first_reach([0, 10], [0.5, 0.3], 0.4) is None


def _arm(name: str, pool: str, size: int, accs: list[list[float]], groups: float | None = 100.0) -> dict:
    runs = [{"steps": [0, 5, 10], "accuracy": a, "tokens": [0, 1, 2]} for a in accs]
    if groups is not None:
        for r in runs:
            r["generated_groups"] = groups
    return {
        "name": name, "pool": pool, "curation": "none", "pool_size": size, "seeds": list(range(len(accs))),
        "steps": [0, 5, 10], "runs": runs, "steps_to_full": None, "tokens_to_full": None,
    }  # fmt: skip


def test_leaderboard_ranks_costs_and_labels(tmp_path: Path) -> None:
    arms = [
        _arm("full", "full", 100, [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]),
        _arm("lim", "lim", 30, [[0.2, 0.3, 0.4], [0.2, 0.3, 0.4]]),
        _arm("rand", "rand", 30, [[0.2, 0.2, 0.3], [0.2, 0.2, 0.3]]),
        _arm("band", "band", 25, [[0.2, 0.2, 0.45], [0.2, 0.2, 0.45]], groups=80.0),
    ]
    correct = {
        "full": _first(200, 2), "lim": _first(160, 2), "rand": _first(120, 2), "band": _first(180, 2),
    }  # fmt: skip
    kw = {"pool_size": 100, "n_problems": N, "samples_per_prompt": 8, "epochs_full": 5}
    strategies = {"band": {"strategy": "pass-band", "band_epochs": 1}}
    lb = build_leaderboard(arms, strategies=strategies, correct=correct, **kw)
    assert lb["method"] == PAIRED and [r["arm"] for r in lb["rows"]] == ["full", "band", "lim", "rand"]
    by = {r["arm"]: r for r in lb["rows"]}
    assert by["lim"]["vs_rand"]["mean"] == pytest.approx(0.1) and by["lim"]["vs_rand"]["separated"]
    assert by["full"]["vs_full"] is None and by["rand"]["vs_rand"] is None
    assert by["lim"]["pool_share"] == 0.3 and by["full"]["rollouts"] == 800
    assert by["band"]["rollouts_saved_vs_full"] == 160  # (100 - 80) groups x 8 samples
    assert by["lim"]["selection_rollouts"] == 800 and by["band"]["selection_rollouts"] == 160  # 1 of 5 epochs
    assert by["rand"]["selection_rollouts"] == 0
    text = leaderboard_markdown(lb)
    assert "| 1 | full | 100 (100%) | 2 | 50.0 [" in text and PAIRED in text and " *" in text
    assert "Where the lim - rand interval's width comes from: held-out problems alone +/-" in text
    assert "The difference seed by seed: 0: +10.0, 1: +10.0." in text
    assert plot_leaderboard(lb, tmp_path / "lb.png").stat().st_size > 10_000
    # an arm trained on LIM's pool for FULL's epochs that ranks above LIM: the note is still about the arm lim
    epochs = _arm("lim-epochs", "lim", 30, [[0.2, 0.3, 0.45], [0.2, 0.3, 0.45]])
    lb = build_leaderboard([*arms, epochs], correct={**correct, "lim-epochs": _first(190, 2)}, **kw)
    assert [r["arm"] for r in lb["rows"]].index("lim-epochs") < [r["arm"] for r in lb["rows"]].index("lim")
    assert "Where the lim - rand interval's width comes from" in leaderboard_markdown(lb)
    # without per-problem records (or with some arm missing them): the unpaired fallback, labelled
    lb = build_leaderboard(arms, correct={"full": correct["full"]}, **kw)
    assert lb["method"] == UNPAIRED and UNPAIRED in leaderboard_markdown(lb)


def test_bits_round_trip_and_the_committed_study() -> None:
    c = np.array([[1, 0, 1], [0, 0, 1]], float)
    assert array_to_bits(c) == ["101", "001"] and (bits_to_array(array_to_bits(c)) == c).all()
    results = json.loads((Path(__file__).parents[2] / "docs" / "experiment-results.json").read_text())
    lb = from_results(results, replicates=500)
    assert lb["method"] == UNPAIRED and lb["problems"] == results["held_out"]
    lim = next(r for r in lb["rows"] if r["arm"] == "lim")
    assert lim["final"]["mean"] == pytest.approx(next(a for a in results["arms"] if a["name"] == "lim")["final_mean"])
    assert lim["rollouts"] == results["steps"] * results["prompts_per_step"] * results["samples_per_prompt"]


def test_heldout_records_round_trip_and_feed_the_paired_leaderboard(tmp_path: Path) -> None:
    from limr.events.heldout import read_heldout, write_heldout
    from limr.events.metrics import write_step_metrics
    from limr.experiment.report import final_records
    from limr.experiment.results import aggregate, read_curve
    from limr.store import open_store

    store = open_store(str(tmp_path))
    assert read_heldout(store, "r", 4) is None
    with pytest.raises(ValueError, match="2 held-out ids for 1 results"):
        write_heldout(store, "r", 4, ["a", "b"], [True])
    arms = []
    for name, bits in (("full", ["110", "100"]), ("lim", ["010", "011"])):
        curves = []
        for seed, b in enumerate(bits):
            run = f"{name}-s{seed}"
            for step in (1, 2):
                m = {"train/step": step, "train/accuracy": 0.5, "rollout/generated_prompts": 4.0}
                m |= {"eval/accuracy_initial": 0.3, "eval/accuracy": b.count("1") / 3}
                write_step_metrics(store, run, step, m)
            write_heldout(store, run, 2, ["p", "q", "r"], [c == "1" for c in b])
            curves.append(read_curve(store, run))
        arms.append(aggregate(name, name, "none", 3, [0, 1], curves))
    assert arms[0].runs[0]["generated_groups"] == 8.0 and arms[0].runs[0]["skipped_groups"] is None
    rec = final_records(store, arms)
    assert rec == {"final_problems": ["p", "q", "r"], "final_correct": {"full": ["110", "100"], "lim": ["010", "011"]}}
    write_heldout(store, "lim-s1", 2, ["p", "q", "x"], [True, True, True])  # another held-out set: no pairing
    assert final_records(store, arms) == {}
