"""Curves read back from the learner's per-step metrics, per-arm mean and spread, "to reach FULL", the goal check."""

from __future__ import annotations

import math

import pytest

from limr.events.metrics import read_run_metrics, write_step_metrics
from limr.experiment.results import aggregate, benchmark_means, markdown, reach, read_curve, verdict
from limr.store import open_store


def scripted_run(store, run_id: str, accs: dict[int, float], initial: float, tokens_per_step: float, steps: int = 4):
    for step in range(1, steps + 1):
        m = {"train/step": step, "train/accuracy": 0.1 * step, "rollout/generated_tokens": tokens_per_step}
        m["eval/accuracy_initial"] = initial
        if step in accs:
            m["eval/accuracy"] = accs[step]
        write_step_metrics(store, run_id, step, m)


def test_step_metrics_round_trip(tmp_path):
    store = open_store(str(tmp_path))
    write_step_metrics(store, "r", 2, {"b": 2, "a": 1.5})
    write_step_metrics(store, "r", 1, {"a": 0})
    assert read_run_metrics(store, "r") == [{"a": 0.0}, {"a": 1.5, "b": 2.0}]


def test_curves_aggregate_and_reach(tmp_path):
    store = open_store(str(tmp_path))
    scripted_run(store, "full-0", {2: 0.4, 4: 0.5}, 0.3, 100)
    scripted_run(store, "full-1", {2: 0.5, 4: 0.7}, 0.3, 100)
    scripted_run(store, "lim-0", {2: 0.6, 4: 0.6}, 0.3, 80)
    scripted_run(store, "lim-1", {2: 0.6, 4: 0.6}, 0.3, 80)
    c = read_curve(store, "full-0")
    assert c.steps == [0, 2, 4] and c.accuracy == [0.3, 0.4, 0.5]
    assert c.tokens == [0.0, 200.0, 400.0] and c.total_tokens == 400
    full = aggregate("full", "full", "none", 100, [0, 1], [c, read_curve(store, "full-1")])
    lim = aggregate("lim", "lim", "none", 20, [0, 1], [read_curve(store, f"lim-{s}") for s in (0, 1)])
    assert full.final_mean == pytest.approx(0.6) and full.final_std == pytest.approx(0.1)
    assert full.best_mean == pytest.approx(0.6)
    reach([full, lim], full)
    assert (lim.steps_to_full, lim.tokens_to_full) == (2, 160.0)  # 0.6 >= FULL's final mean at step 2
    assert full.steps_to_full == 4
    v = verdict([full, lim], 100)
    assert v["lim_share_of_pool"] == 0.2 and v["lim_within_one_std_of_full"]
    assert "goal_met" not in v  # no RAND arm: the goal cannot be judged
    rand = aggregate("rand", "rand", "none", 20, [0, 1], [read_curve(store, f"full-{s}") for s in (0, 1)])
    rand.final_mean = 0.55
    v = verdict([full, lim, rand], 100)
    assert math.isclose(v["lim_minus_rand"], 0.05) and v["goal_met"]
    lim_summary = {"threshold": 0.6, "selected": 20, "r_avg": [0.2, 0.6]}
    summary = {"name": "t", "held_out": 10, "steps": 4, "prompts_per_step": 2, "samples_per_prompt": 2}
    summary.update(pool_size=100, lim=lim_summary, verdict=v)
    text = markdown([full, lim, rand], summary)
    assert "| lim | 20 | 30.0 | 60.0 ± 0.0 |" in text and "0.20, 0.60" in text
    assert "selected 20 (20.0% of the pool)" in text and '"goal_met": true' in text
    # a FULL-only study (configs/experiment-tiny-long.yaml): LIM's share of the pool, no goal to check
    only_full = markdown([full], {**summary, "verdict": verdict([full], 100)})
    assert "selected 20 (20.0% of the pool)" in only_full and "Goal" not in only_full


def test_arms_evaluated_at_different_steps_are_refused(tmp_path):
    store = open_store(str(tmp_path))
    scripted_run(store, "a", {2: 0.4, 4: 0.5}, 0.3, 1)
    scripted_run(store, "b", {4: 0.5}, 0.3, 1)
    with pytest.raises(ValueError, match="different steps"):
        aggregate("x", "full", "none", 1, [0, 1], [read_curve(store, "a"), read_curve(store, "b")])


def test_benchmark_means_over_seeds():
    out = benchmark_means([{"accuracy": {"math500": 0.5, "aime24": 0.1}}, None, {"accuracy": {"math500": 0.7}}])
    assert out["math500"] == {"mean": pytest.approx(0.6), "std": pytest.approx(0.1), "runs": 2}
    assert out["aime24"]["runs"] == 1


def test_early_lim_verdict_compares_with_lim_at_the_tokens_of_full_then_lim(tmp_path):
    from limr.experiment.results import early_lim_verdict

    store = open_store(str(tmp_path))
    for run, accs, tokens in [("full-0", {4: 0.5}, 100), ("lim-0", {4: 0.6}, 80), ("early-0", {4: 0.58}, 90)]:
        scripted_run(store, run, accs, 0.3, tokens)
    full, lim, early = (
        aggregate(name, pool, cur, 100, [0], [read_curve(store, f"{name}-0")])
        for name, pool, cur in [("full", "full", "none"), ("lim", "lim", "none"), ("early", "full", "early-lim")]
    )
    early.final_std = 0.03
    v = early_lim_verdict([full, lim, early])["early"]
    assert v["tokens_share_of_full_then_lim"] == pytest.approx(360 / (400 + 320))
    assert v["within_one_std_of_lim"] and v["goal_met"] and v["minus_lim"] == pytest.approx(-0.02)
    early.final_std = 0.0
    assert not early_lim_verdict([full, lim, early])["early"]["goal_met"]  # 2 points below, no spread
    assert early_lim_verdict([full, early]) == {}  # no LIM arm to compare with


def test_headline_of_the_measured_study():
    import json

    from limr.experiment.headline import MEASURED, headline, load_results

    results, origin = load_results(None)
    assert str(MEASURED) in origin and MEASURED.parent.name == "experiment-field"
    text = headline(results)
    assert f"full {results['pool_size']} prompts" in text and "x FULL's rollout tokens" in text
    assert f"after {results['steps']} steps" in text and f"{results['held_out']} problems" in text
    # nine arms: the headline names FULL, LIM and RAND and points to the leaderboard for the rest
    assert f"and {len(results['arms']) - 3} more arms (the leaderboard" in text and "greso" not in text
    # LIM - RAND comes with its interval, and says whether it separates them: the demo must not read as a win
    d = next(r["vs_rand"] for r in results["leaderboard"]["rows"] if r["arm"] == "lim")
    assert f"LIM - RAND: {100 * d['mean']:+.1f} points [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]" in text
    assert ("does not separate LIM from RAND" in text) is not d["separated"]
    # the first study: its 3-seed lead of LIM over RAND includes 0; a three-arm study names every arm
    first = json.loads((MEASURED.parents[1] / "experiment-results.json").read_text())
    text = headline(first)
    assert "and 2 more arms" in text and "dynamic" not in text and "the goal" in text
    assert "LIM - RAND: +3.3 points [" in text and "does not separate LIM from RAND" in text
    three = dict(first, arms=[a for a in first["arms"] if a["name"] in ("full", "lim", "rand")])
    assert "more arms" not in headline(three) and "rand " in headline(three)
