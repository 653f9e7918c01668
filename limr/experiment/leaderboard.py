"""The study's leaderboard: every arm's final held-out accuracy with a 95% interval, its paired differences from
FULL and from RAND, what it costs (rollouts, and the rollouts its selection needed) and how fast it reaches FULL.

It reads the arms as results.json stores them (`ArmResult` dicts), so the same code ranks a fresh study and the
committed results of an earlier one. With per-problem records of every run's final evaluation (`correct`) the
intervals come from the paired bootstrap over problems and seeds; without them (studies from before the records
existed) from the unpaired fallback, and the leaderboard says which (`method`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from limr.experiment.stats import PAIRED, UNPAIRED, AccuracyBootstrap, PairedBootstrap

# Which rollouts a selector needs before its arm can train: the scored FULL run (every epoch), or its first K
# epochs (pass-band), or none (random, online curation).
TRAJECTORY_SELECTORS = ("lim", "linear", "variance", "learnability")


def _run_rollouts(run: dict[str, Any], samples_per_prompt: int) -> float | None:
    groups = run.get("generated_groups")
    return None if groups is None else float(groups) * samples_per_prompt


def build_leaderboard(
    arms: list[dict[str, Any]],
    *,
    pool_size: int,
    n_problems: int,
    samples_per_prompt: int,
    epochs_full: int,
    strategies: dict[str, dict[str, Any]] | None = None,
    correct: dict[str, np.ndarray] | None = None,
    full: str = "full",
    rand: str | None = "rand",
    replicates: int = 2000,
) -> dict[str, Any]:
    """Rank the arms by final accuracy. `strategies[pool]` describes how a curated pool was selected (the
    subset's strategy and pass-band epochs); `correct[arm]` is (seeds, problems) of final answers."""
    seeds = {a["name"]: list(a["seeds"]) for a in arms}
    names = [a["name"] for a in arms]
    if correct is not None and set(correct) >= set(names):
        boot: PairedBootstrap = PairedBootstrap({n: correct[n] for n in names}, seeds, replicates)
        method = PAIRED
    else:
        finals = {a["name"]: [r["accuracy"][-1] for r in a["runs"]] for a in arms}
        boot = AccuracyBootstrap(finals, seeds, n_problems, replicates)
        method = UNPAIRED
    by = {a["name"]: a for a in arms}
    full_arm = by[full]
    full_rollouts = _mean([_run_rollouts(r, samples_per_prompt) for r in full_arm["runs"]])
    rand = rand if rand in by else None
    rows = []
    for a in arms:
        rollouts = _mean([_run_rollouts(r, samples_per_prompt) for r in a["runs"]])
        skipped = _mean([r.get("skipped_groups") for r in a["runs"]])
        row: dict[str, Any] = {
            "arm": a["name"],
            "pool": a["pool"],
            "curation": a["curation"],
            "pool_size": a["pool_size"],
            "pool_share": a["pool_size"] / pool_size if pool_size else None,
            "seeds": seeds[a["name"]],
            "steps": a["steps"][-1],
            "final": boot.arm_interval(a["name"]).to_dict(),
            "vs_full": None if a["name"] == full else boot.difference(a["name"], full),
            "vs_rand": None if rand is None or a["name"] == rand else boot.difference(a["name"], rand),
            "steps_to_full": a.get("steps_to_full"),
            "tokens_to_full": a.get("tokens_to_full"),
            "rollouts": rollouts,
            "rollouts_saved_vs_full": None if rollouts is None or full_rollouts is None else full_rollouts - rollouts,
            "rollouts_skipped_before_rollout": None if skipped is None else skipped * samples_per_prompt,
            "selection_rollouts": _selection_cost(a, (strategies or {}).get(a["pool"]), full_rollouts, epochs_full),
        }
        rows.append(row)
    rows.sort(key=lambda r: -r["final"]["mean"])
    return {
        "method": method,
        "replicates": replicates,
        "problems": n_problems,
        "interval": "95% percentile bootstrap",
        "full": full,
        "rand": rand,
        "rows": rows,
    }


def _mean(xs: list[float | None]) -> float | None:
    got = [x for x in xs if x is not None]
    return float(np.mean(got)) if got and len(got) == len(xs) else None


def _selection_cost(
    arm: dict[str, Any], strategy: dict[str, Any] | None, full_rollouts: float | None, epochs: int
) -> float | None:
    """Rollouts spent before the arm could start: LIM and the other trajectory selectors score the whole FULL
    run; pass-band its first K epochs; RAND and online curation nothing."""
    if arm["pool"] == "full":
        return 0.0
    kind = "lim" if arm["pool"] == "lim" else (strategy or {}).get("strategy")
    if kind in TRAJECTORY_SELECTORS:
        return full_rollouts
    if kind == "pass-band":
        return (
            None
            if full_rollouts is None
            else full_rollouts * min(1.0, (strategy or {}).get("band_epochs", 1) / epochs)
        )
    return 0.0


def _pct(iv: dict[str, Any] | None, sign: bool = False) -> str:
    if iv is None:
        return "-"
    f = "+.1f" if sign else ".1f"
    mark = " *" if iv.get("separated") else ""
    return f"{100 * iv['mean']:{f}} [{100 * iv['lo']:{f}}, {100 * iv['hi']:{f}}]{mark}"


def _k(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x / 1e3:+.1f}k" if signed else f"{x / 1e3:.1f}k"


LEADERBOARD_HEADER = [
    "#", "arm", "pool (share)", "seeds", "final % [95% CI]", "vs FULL, points", "vs RAND, points",
    "steps to FULL final", "tokens to FULL final", "rollouts (saved vs FULL)", "selection rollouts",
]  # fmt: skip


def leaderboard_rows(lb: dict[str, Any]) -> list[list[str]]:
    out = []
    for i, r in enumerate(lb["rows"], 1):
        share = "" if r["pool_share"] is None else f" ({100 * r['pool_share']:.0f}%)"
        saved = "" if r["rollouts_saved_vs_full"] is None else f" ({_k(r['rollouts_saved_vs_full'], True)})"
        if r["rollouts_skipped_before_rollout"]:
            saved += f", {_k(r['rollouts_skipped_before_rollout'])} skipped"
        out.append(
            [
                str(i), r["arm"], f"{r['pool_size']}{share}", str(len(r["seeds"])), _pct(r["final"]),
                _pct(r["vs_full"], True), _pct(r["vs_rand"], True),
                "-" if r["steps_to_full"] is None else str(r["steps_to_full"]),
                "-" if r["tokens_to_full"] is None else f"{r['tokens_to_full'] / 1e3:.0f}k",
                _k(r["rollouts"]) + saved, _k(r["selection_rollouts"]),
            ]
        )  # fmt: skip
    return out


def leaderboard_markdown(lb: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(LEADERBOARD_HEADER) + " |", "|" + "---|" * len(LEADERBOARD_HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in leaderboard_rows(lb)]
    note = (
        f"Intervals: {lb['interval']} ({lb['replicates']} replicates), {lb['method']}, {lb['problems']} held-out "
        f"problems. Differences are {'paired on problems and on' if lb['method'] == PAIRED else 'taken over'} the "
        "seeds both arms ran; * marks an interval that excludes 0. "
        "'selection rollouts': rollouts spent before the arm could start (the scored FULL run for LIM and the "
        "other trajectory selectors, its first K epochs for pass-band)."
    )
    return "\n".join([*lines, "", note, *_noise_note(lb)])


def _noise_note(lb: dict[str, Any]) -> list[str]:
    """One line on LIM - RAND's interval: how wide it is from the problems alone and from the seeds alone, and the
    difference seed by seed; this decides whether a study needs more held-out problems or more seeds."""
    rows = [r for r in lb["rows"] if r["pool"] == "lim" and r["vs_rand"] and "noise" in r["vs_rand"]]
    # the arm named lim, not whichever arm on LIM's pool ranks first (lim-epochs trains on it too)
    row = min(rows, key=lambda r: r["arm"] != "lim", default=None)
    if row is None:
        return []
    d, noise = row["vs_rand"], row["vs_rand"]["noise"]
    seeds = ", ".join(f"{s}: {100 * x:+.1f}" for s, x in zip(noise["paired_seeds"], noise["per_seed"], strict=True))
    return [
        "",
        f"Where the {row['arm']} - {lb['rand']} interval's width comes from: held-out problems alone "
        f"+/-{100 * noise['problems']:.1f} points, seeds alone +/-{100 * noise['seeds']:.1f} "
        f"(both: +/-{100 * (d['hi'] - d['lo']) / 2:.1f}). The difference seed by seed: {seeds}.",
    ]


def from_results(results: dict[str, Any], replicates: int = 2000) -> dict[str, Any]:
    """The leaderboard of a stored results.json (its own per-problem records when it has them)."""
    correct = results.get("final_correct")  # arm -> one "0110..." string per seed, in final_problems order
    arrays = {a: bits_to_array(v) for a, v in correct.items()} if correct else None
    names = {a["name"] for a in results["arms"]}
    arms = [dict(a, runs=[_with_groups(r, a, results) for r in a["runs"]]) for a in results["arms"]]
    return build_leaderboard(
        arms,
        pool_size=results["pool_size"],
        n_problems=results["held_out"],
        samples_per_prompt=results["samples_per_prompt"],
        epochs_full=results["epochs_full"],
        strategies=results.get("subsets"),
        correct=arrays,
        full=next(a["name"] for a in results["arms"] if a["pool"] == "full" and a["curation"] == "none"),
        rand="rand" if "rand" in names else None,
        replicates=replicates,
    )


def _with_groups(run: dict[str, Any], arm: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Runs recorded before `generated_groups` existed: an arm without dynamic sampling generates exactly its
    steps x prompts per step groups (that is how the learner fills a step); a dynamic one is unknown."""
    if "generated_groups" in run or arm["curation"] not in ("none", "early-lim"):
        return run
    return dict(run, generated_groups=float(run["steps"][-1] * results["prompts_per_step"]))


def array_to_bits(correct: np.ndarray) -> list[str]:
    """(S, N) of 0/1 -> one '0110...' string per seed (how results.json keeps per-problem records)."""
    return ["".join("1" if x else "0" for x in row) for row in np.asarray(correct)]


def bits_to_array(bits: list[str]) -> np.ndarray:
    return np.array([[c == "1" for c in row] for row in bits], np.float64)
