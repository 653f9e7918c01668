"""Writes `out/`: results.json, results.md and the PNG figures, from what the study left in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from limr.atomic import atomic_file
from limr.events.run import read_run_meta
from limr.experiment.arms import RunPlan
from limr.experiment.config import ExperimentConfig
from limr.experiment.final_eval import read_final_eval
from limr.experiment.inputs import StudyInputs
from limr.experiment.leaderboard import array_to_bits, from_results
from limr.experiment.plots import plot_accuracy, plot_leaderboard
from limr.experiment.results import (
    ArmResult,
    aggregate,
    benchmark_means,
    early_lim_verdict,
    markdown,
    reach,
    read_curve,
    verdict,
)
from limr.experiment.runner import StudyState
from limr.view.plots import plot_score_histogram, plot_trajectories


def write_results(
    cfg: ExperimentConfig, store, inputs: StudyInputs, plans: list[RunPlan], state: StudyState, out: Path,
    api_downloads: int | None, wall_seconds: float,
) -> tuple[list[ArmResult], dict[str, Any]]:  # fmt: skip
    """Aggregate every arm, check the goal, write results.json/.md and the plots; returns (arms, summary)."""
    from limr.scoring import score_run

    out.mkdir(parents=True, exist_ok=True)
    full_arm = cfg.full_arm()
    source = next(p for p in plans if p.arm is full_arm and p.seed == cfg.source_seed())
    arms: list[ArmResult] = []
    for arm in cfg.arms:
        mine = [p for p in plans if p.arm is arm]
        if not mine:  # a study reported part-way (`--finished-only`): this arm has no finished run yet
            continue
        size = inputs.pool_size if arm.pool == "full" else int(state.manifests[arm.pool]["counts"]["selected"])
        curves = [read_curve(store, p.run_id) for p in mine]
        arms.append(aggregate(arm.name, arm.pool, arm.curation, size, [p.seed for p in mine], curves))
        arms[-1].budget = arm.budget
        if cfg.final_eval:
            arms[-1].benchmarks = benchmark_means([read_final_eval(store, p.run_id) for p in mine])
    full = next(a for a in arms if a.name == full_arm.name)
    reach(arms, full)

    result = score_run(store, source.run_id)
    selected = result.scores >= cfg.lim.threshold
    skills = [inputs.groups.get(pid, "pool") for pid in result.prompt_ids]
    by_skill: dict[str, dict[str, Any]] = {}
    for s, sel in zip(skills, selected, strict=True):
        d = by_skill.setdefault(s, {"prompts": 0, "selected": 0})
        d["prompts"] += 1
        d["selected"] += int(sel)
    never = 0
    if result.trajectories is not None:
        never = int((selected & (result.trajectories.max(axis=1) == 0)).sum())
        for skill, d in by_skill.items():  # how each kind of prompt moved: is the run in the paper's regime?
            rows = result.trajectories[np.asarray([s == skill for s in skills])]
            d["mean_accuracy_per_epoch"] = [round(float(x), 4) for x in np.nanmean(rows, axis=0)]
    run_prompts = {p.run_id: read_run_meta(store, p.run_id).config["data"]["prompts"] for p in plans}
    base = plans[0]
    meta = read_run_meta(store, base.run_id).config
    summary: dict[str, Any] = {
        "name": cfg.name,
        "store": store.uri,
        "pool_size": inputs.pool_size,
        "held_out": _count_lines(inputs.held_out),
        "steps": base.steps,
        "prompts_per_step": meta["batch"]["rollout_batch_size"],
        "samples_per_prompt": meta["rollout"]["samples_per_prompt"],
        "epochs_full": cfg.epochs,
        "wall_seconds": wall_seconds,
        "run_seconds": state.seconds,
        "reused_runs": state.reused,
        "lim": {
            "source_run": source.run_id,
            "threshold": cfg.lim.threshold,
            "selected": int(selected.sum()),
            "scored": len(result),
            "r_avg": [float(x) for x in (result.r_avg if result.r_avg is not None else [])],
            "by_skill": by_skill,
            "selected_never_solved": never,
            "version": state.versions.get("lim"),
        },
        "rand": {"version": state.versions.get("rand")},
        "api": {"pools": run_prompts, "data_downloads": api_downloads},
        "verdict": verdict(arms, inputs.pool_size),
        "early_lim": early_lim_verdict(arms),
        "comparisons": {f"{a} vs {b}": verdict(arms, inputs.pool_size, a, b) for a, b in cfg.comparisons()},
        "arms": [a.__dict__ for a in arms],
        "subsets": {name: sub.model_dump() for name, sub in cfg.subsets.items()},
    }
    summary.update(final_records(store, arms))
    summary["composition"] = _composition(store, cfg, plans, result, inputs.groups)
    summary["leaderboard"] = from_results(summary)
    plot_leaderboard(summary["leaderboard"], out / "leaderboard.png")
    plot_accuracy(arms, out / "accuracy_vs_step.png", "step")
    plot_accuracy(arms, out / "accuracy_vs_tokens.png", "tokens")
    plot_trajectories(result, out / "lim_trajectories.png")
    plot_score_histogram(np.asarray(result.scores), skills, cfg.lim.threshold, out / "score_histogram.png")
    _write(out / "results.json", json.dumps(summary, indent=2))
    _write(out / "results.md", markdown(arms, summary))
    return arms, summary


def _composition(store, cfg: ExperimentConfig, plans: list[RunPlan], source, groups: dict[str, str]) -> dict[str, Any]:
    """Which prompts each curated arm's pool holds (the prompts its first run trained on), by skill, and how they
    moved in FULL's source run and in the arm's own first run (limr.experiment.composition)."""
    from limr.events.io import read_prompts
    from limr.experiment.composition import composition
    from limr.scoring import score_run

    pools, own = {}, {}
    for arm in cfg.arms:
        if arm.pool == "full":
            continue
        first = next((p for p in plans if p.arm is arm), None)
        if first is None:  # reported part-way (`--finished-only`): no run of this arm has finished yet
            continue
        pools[arm.name] = {r.prompt_id for r in read_prompts(store, first.run_id)}
        own[arm.name] = score_run(store, first.run_id)
    return composition(source, pools, groups, own)


def final_records(store, arms: list[ArmResult]) -> dict[str, Any]:
    """`final_problems` and, per arm, one '0110...' string per seed of its final evaluation's per-problem results
    (limr.events.heldout), when every run wrote them on the same problems; else nothing (the leaderboard then
    falls back to the unpaired bootstrap)."""
    from limr.events.heldout import read_heldout

    ids: list[str] | None = None
    out: dict[str, list[str]] = {}
    for a in arms:
        rows = []
        for run in a.runs:
            rec = read_heldout(store, run["run_id"], run["steps"][-1])
            if rec is None or (ids is not None and rec["prompt_ids"] != ids):
                return {}
            ids = rec["prompt_ids"]
            rows.append([c == "1" for c in rec["correct"]])
        out[a.name] = array_to_bits(np.array(rows))
    return {"final_problems": ids, "final_correct": out} if ids is not None else {}


def _count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _write(path: Path, text: str) -> None:
    with atomic_file(path) as f:
        f.write(text)
