"""The demo's result: LIM's selection per skill (kept and dropped, and how each moved over the run) and why.

A reader should see from the table alone what LIM keeps: not the prompts solved from the start, nor the ones
never solved, but the ones whose accuracy moves with the pool's average curve r_avg. The per-skill split reuses
the study's composition (limr.experiment.composition); the plots are limr.view.plots'.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from limr.scoring.result import ScoreResult


def _move(d: dict[str, Any] | None) -> str:
    if not d or d["first"] is None:
        return "-"
    return f"{d['first']:.2f} -> {d['last']:.2f}"


def extreme_scores(r_avg: np.ndarray) -> tuple[float, float]:
    """LIM scores of a prompt solved in every sample of every epoch and of one never solved, for this r_avg:
    `1 - sum (r - r_avg)^2 / sum (1 - r_avg)^2` with r = 1 (always 0) and r = 0."""
    denom = float(((1.0 - r_avg) ** 2).sum())
    if denom == 0.0:
        return 1.0, 1.0
    return 0.0, 1.0 - float((r_avg**2).sum()) / denom


def why_line(r_avg: np.ndarray, threshold: float) -> str:
    """One sentence on why LIM kept what it kept, from where the average curve sits."""
    solved, never = extreme_scores(r_avg)
    head = f"why: at this r_avg a prompt always solved scores {solved:.2f}, one never solved {never:.2f}: "
    if never < threshold and solved < threshold:
        return head + f"both below {threshold:g}, so LIM keeps the prompts that learn along with r_avg"
    return head + f"r_avg is so low that unsolved prompts clear {threshold:g} (docs/experiment.md)"


def report(
    result: ScoreResult,
    selected_ids: list[str] | set[str],
    groups: dict[str, str] | None = None,
    title: str = "LIM selection",
    threshold: float | None = None,
) -> tuple[str, dict]:
    """A text table per group (`groups` maps prompt id -> skill or profile) and the same numbers as a dict.

    Per group: prompts, scored, left out, kept and dropped, the mean LIM score, and the mean accuracy of the kept
    and of the dropped prompts at the first and last epoch of the run (what LIM saw)."""
    from rich.console import Console
    from rich.table import Table

    from limr.experiment.composition import composition

    selected = set(selected_ids)
    score_of = dict(zip(result.prompt_ids, result.scores.tolist(), strict=True))
    groups = groups or {pid: "all" for pid in result.prompt_ids}
    comp = composition(result, {"lim": selected}, groups, {}).get("arms", {}).get("lim", {})
    names = sorted(set(groups.values()))
    rows = []
    for name in names:
        members = [pid for pid, g in groups.items() if g == name]
        scored = [score_of[p] for p in members if p in score_of]
        kept = sum(1 for p in members if p in selected)
        rows.append(
            {
                "group": name,
                "prompts": len(members),
                "scored": len(scored),
                "left_out": sum(1 for p in members if p in result.left_out),
                "selected": kept,
                "dropped": len(scored) - kept,
                "mean_score": float(np.mean(scored)) if scored else None,
                "kept_accuracy": comp.get("kept", {}).get(name),
                "dropped_accuracy": comp.get("dropped", {}).get(name),
            }
        )
    table = Table(title=title)
    cols = ("group", "prompts", "scored", "left out", "kept", "kept: accuracy", "dropped", "dropped: accuracy")
    for col in (*cols, "mean LIM score"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for r in rows:
        ms = "-" if r["mean_score"] is None else f"{r['mean_score']:.3f}"
        table.add_row(
            r["group"], str(r["prompts"]), str(r["scored"]), str(r["left_out"]), str(r["selected"]),
            _move(r["kept_accuracy"]), str(r["dropped"]), _move(r["dropped_accuracy"]), ms,
        )  # fmt: skip
    total_sel = len(selected & set(score_of))
    table.add_row(
        "total", str(len(groups)), str(len(result)), str(len(result.left_out)), str(total_sel), "",
        str(len(result) - total_sel), "", "", style="bold",
    )  # fmt: skip
    console = Console(width=120, record=True, force_terminal=False)
    with console.capture() as cap:
        console.print(table)
        console.print(f"accuracy: mean share of a prompt's samples solved, epoch 1 -> {result.epochs} of the run")
        share = f" ({100 * total_sel / len(result):.1f}%)" if len(result) else ""
        console.print(f"LIM kept {total_sel} of {len(result)} scored prompts{share}")
        if result.r_avg is not None and len(result.r_avg):
            console.print("average curve r_avg per epoch: " + " ".join(f"{x:.2f}" for x in result.r_avg))
            if threshold is not None:
                console.print(why_line(np.asarray(result.r_avg), threshold))
        reasons = Counter(r.split(",")[0] for r in result.left_out.values())
        for reason, n in reasons.most_common(3):
            console.print(f"left out: {n} x {reason}")
    summary = {
        "source": result.source,
        "epochs": result.epochs,
        "events": result.events,
        "scored": len(result),
        "left_out": len(result.left_out),
        "selected": total_sel,
        "selected_share": total_sel / len(result) if len(result) else None,
        "r_avg": None if result.r_avg is None else [float(x) for x in result.r_avg],
        "groups": rows,
    }
    return cap.get(), summary
