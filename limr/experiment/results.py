"""The study's results from the store: per-run curves, per-arm mean and spread, the table, results.json/.md.

A run's curve is its held-out greedy accuracy at step 0 and every evaluation step, with the rollout tokens
generated up to that step (dropped groups of dynamic sampling included). Arms are compared at equal steps
and at equal tokens; "to reach FULL" is the first evaluation where the arm's mean accuracy is at least
FULL's final mean accuracy.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from limr.events.metrics import read_run_metrics
from limr.experiment.leaderboard import leaderboard_markdown


@dataclass
class Curve:
    run_id: str
    steps: list[int]  # 0 and every evaluation step
    accuracy: list[float]  # held-out greedy accuracy at those steps
    tokens: list[float]  # rollout tokens generated up to those steps
    total_tokens: float
    train_accuracy: list[float]  # sampled training accuracy of every step
    generated_groups: float | None = None  # prompts rolled out (x samples per prompt = rollouts), dropped ones too
    skipped_groups: float | None = None  # prompts GRESO skipped before rollout (curation.mode greso)


def read_curve(store, run_id: str) -> Curve:
    rows = read_run_metrics(store, run_id)
    if not rows:
        raise ValueError(f"run {run_id!r} has no step metrics in {store.uri}")
    steps, acc, tokens = [0], [rows[0].get("eval/accuracy_initial", math.nan)], [0.0]
    cum = 0.0
    groups = _total(rows, "rollout/generated_prompts")
    skipped = _total(rows, "curation/greso_skipped") if any("curation/greso_skipped" in r for r in rows) else None
    for r in rows:
        cum += r.get("rollout/generated_tokens", r.get("rollout/response_length", 0.0) * r.get("n_samples", 0.0))
        if "eval/accuracy" in r:
            steps.append(int(r["train/step"]))
            acc.append(r["eval/accuracy"])
            tokens.append(cum)
    return Curve(run_id, steps, acc, tokens, cum, [r["train/accuracy"] for r in rows], groups, skipped)


def _total(rows: list[dict[str, float]], key: str) -> float | None:
    """Sum of a per-step metric over the run (None when a step lacks it: runs from before it was recorded)."""
    return float(sum(r.get(key, 0.0) for r in rows)) if all(key in r for r in rows) else None


@dataclass
class ArmResult:
    name: str
    pool: str  # full | lim | rand
    curation: str
    pool_size: int
    seeds: list[int]
    steps: list[int]
    acc_mean: list[float]
    acc_std: list[float]
    tokens_mean: list[float]
    final_mean: float
    final_std: float
    best_mean: float  # mean over seeds of each run's best evaluation
    best_std: float
    total_tokens_mean: float
    steps_to_full: int | None  # first evaluation step where the mean reaches FULL's final mean
    tokens_to_full: float | None
    runs: list[dict[str, Any]]
    benchmarks: dict[str, dict[str, float]] | None = None  # final_eval: benchmark -> {mean, std} over seeds
    budget: str = "steps"  # steps: FULL's steps; epochs: FULL's epochs over its own pool


def benchmark_means(evals: list[dict[str, Any] | None]) -> dict[str, dict[str, float]]:
    """Per benchmark, mean and std over seeds of the final models' accuracies (runs without one left out)."""
    found = [e["accuracy"] for e in evals if e]
    names = sorted({b for acc in found for b in acc})
    out = {}
    for b in names:
        xs = np.array([acc[b] for acc in found if b in acc])
        out[b] = {"mean": float(xs.mean()), "std": float(xs.std()), "runs": len(xs)}
    return out


def aggregate(name: str, pool: str, curation: str, pool_size: int, seeds: list[int], curves: list[Curve]) -> ArmResult:
    steps = curves[0].steps
    if any(c.steps != steps for c in curves):
        raise ValueError(f"arm {name}: runs were evaluated at different steps")
    acc = np.array([c.accuracy for c in curves])  # (seeds, evals)
    tok = np.array([c.tokens for c in curves])  # (seeds, evals)
    final, best = acc[:, -1], acc.max(axis=1)
    return ArmResult(
        name=name, pool=pool, curation=curation, pool_size=pool_size, seeds=seeds, steps=steps,
        acc_mean=acc.mean(0).tolist(), acc_std=acc.std(0).tolist(), tokens_mean=tok.mean(0).tolist(),
        final_mean=float(final.mean()), final_std=float(final.std()),
        best_mean=float(best.mean()), best_std=float(best.std()),
        total_tokens_mean=float(np.mean([c.total_tokens for c in curves])),
        steps_to_full=None, tokens_to_full=None, runs=[asdict(c) for c in curves],
    )  # fmt: skip


def reach(arms: list[ArmResult], full: ArmResult) -> None:
    """Fill steps/tokens to reach FULL's final mean accuracy (None: never reached)."""
    for a in arms:
        for s, m, t in zip(a.steps, a.acc_mean, a.tokens_mean, strict=True):
            if s > 0 and m >= full.final_mean - 1e-12:
                a.steps_to_full, a.tokens_to_full = s, t
                break


def verdict(arms: list[ArmResult], pool_size: int, curated: str = "lim", control: str = "rand") -> dict[str, Any]:
    """The issue's goal, checked on the measured numbers: the curated arm (LIM) <= 30% of the pool, within one
    std of FULL's final accuracy, and at least 3 points above its random control (means over seeds)."""
    by = {a.pool: a for a in arms if a.curation == "none" and a.budget == "steps"}
    full, lim, rand = by.get("full"), by.get(curated), by.get(control)
    out: dict[str, Any] = {}
    if full and lim:
        out["lim_share_of_pool"] = lim.pool_size / pool_size
        out["lim_minus_full"] = lim.final_mean - full.final_mean
        out["lim_within_one_std_of_full"] = lim.final_mean >= full.final_mean - max(full.final_std, lim.final_std)
    if lim and rand:
        out["lim_minus_rand"] = lim.final_mean - rand.final_mean
    if out and {"lim_within_one_std_of_full", "lim_minus_rand"} <= set(out):
        out["goal_met"] = bool(
            out["lim_share_of_pool"] <= 0.30 and out["lim_within_one_std_of_full"] and out["lim_minus_rand"] >= 0.03
        )
    return out


def early_lim_verdict(arms: list[ArmResult]) -> dict[str, Any]:
    """Early LIM's goal (issue 12), per early-lim arm: the LIM arm's final held-out accuracy within one std,
    with at most 60% of the rollout tokens FULL-then-LIM needs (the FULL run LIM scores, then the LIM run)."""
    by = {a.pool: a for a in arms if a.curation == "none" and a.budget == "steps"}
    full, lim = by.get("full"), by.get("lim")
    out: dict[str, Any] = {}
    for a in arms:
        if a.curation != "early-lim" or full is None or lim is None:
            continue
        share = a.total_tokens_mean / (full.total_tokens_mean + lim.total_tokens_mean)
        within = a.final_mean >= lim.final_mean - max(lim.final_std, a.final_std)
        out[a.name] = {
            "minus_lim": a.final_mean - lim.final_mean,
            "within_one_std_of_lim": bool(within),
            "tokens_share_of_full_then_lim": share,
            "goal_met": bool(within and share <= 0.60),
        }
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def table_rows(arms: list[ArmResult]) -> list[list[str]]:
    rows = []
    for a in arms:
        rows.append(
            [
                a.name,
                str(a.pool_size),
                f"{_pct(a.acc_mean[0])}",
                f"{_pct(a.final_mean)} ± {_pct(a.final_std)}",
                f"{_pct(a.best_mean)} ± {_pct(a.best_std)}",
                "-" if a.steps_to_full is None else str(a.steps_to_full),
                "-" if a.tokens_to_full is None else f"{a.tokens_to_full / 1e3:.0f}k",
                f"{a.total_tokens_mean / 1e3:.0f}k",
            ]
        )
    return rows


def _share(selected: int | None, pool_size: int) -> float | None:
    return None if selected is None or not pool_size else selected / pool_size


HEADER = [
    "arm", "pool", "start %", "final % (mean ± std)", "best %", "steps to FULL final", "tokens to FULL final",
    "rollout tokens",
]  # fmt: skip


def _leaderboard_section(lb: dict[str, Any]) -> list[str]:
    return ["## Leaderboard", "", leaderboard_markdown(lb), "", "![leaderboard](leaderboard.png)", ""]


def markdown(arms: list[ArmResult], summary: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(arms)]
    lim = summary.get("lim", {})
    text = [
        f"# {summary['name']}: held-out greedy accuracy ({summary['held_out']} problems), "
        f"{len(arms[0].seeds)} seeds per arm",
        "",
        *lines,
        "",
        *(
            [
                "## Leaderboard",
                "",
                leaderboard_markdown(summary["leaderboard"]),
                "",
                "![leaderboard](leaderboard.png)",
                "",
            ]
            if summary.get("leaderboard")
            else []
        ),
        f"Every run on FULL's step budget: {summary['steps']} steps of {summary['prompts_per_step']} prompts (all of "
        f"a smaller pool) x "
        f"{summary['samples_per_prompt']} samples from the same warm start. Pool {summary['pool_size']} prompts; "
        f"LIM (threshold {lim.get('threshold')}) selected {lim.get('selected')} "
        f"({_pct(_share(lim.get('selected'), summary['pool_size']))}% of the pool); r_avg by epoch "
        f"{', '.join(f'{x:.2f}' for x in lim.get('r_avg', []))}.",
        "",
    ]
    if summary["verdict"]:  # a study without LIM or RAND arms (a FULL-only one) has no goal to check
        text += [
            "Goal (LIM <= 30% of the pool within one std of FULL's final accuracy, LIM - RAND >= 3 points): "
            + json.dumps(summary["verdict"]),
            "",
        ]
    by_skill = lim.get("by_skill") or {}
    if by_skill:
        text += [
            "| skill | prompts | LIM selected | mean accuracy per epoch (FULL source run) |",
            "|---|---|---|---|",
            *(
                f"| {skill} | {d['prompts']} | {d['selected']} | "
                f"{', '.join(f'{x:.2f}' for x in d.get('mean_accuracy_per_epoch', []))} |"
                for skill, d in sorted(by_skill.items())
            ),
            "",
            f"Selected prompts never solved in any epoch: {lim.get('selected_never_solved')}.",
            "",
        ]
    if summary.get("composition", {}).get("arms"):
        from limr.experiment.composition import composition_markdown

        text += ["## What each curated pool keeps and drops", "", composition_markdown(summary["composition"]), ""]
    if summary.get("early_lim"):
        text += [
            "Early LIM (within one std of LIM's final accuracy, <= 60% of the rollout tokens of FULL then LIM): "
            + json.dumps(summary["early_lim"]),
            "",
        ]
    return "\n".join(text)
