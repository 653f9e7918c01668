"""Summary table and the LIM trajectory plot (in the style of Figure 2 of the LIMR paper)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from limr.scoring.result import ScoreResult


def report(
    result: ScoreResult,
    selected_ids: list[str] | set[str],
    groups: dict[str, str] | None = None,
    title: str = "LIM selection",
) -> tuple[str, dict]:
    """A text table (per group if `groups` maps prompt id -> group) and the same numbers as a dict."""
    from rich.console import Console
    from rich.table import Table

    selected = set(selected_ids)
    score_of = dict(zip(result.prompt_ids, result.scores.tolist(), strict=True))
    groups = groups or {pid: "all" for pid in result.prompt_ids}
    names = sorted(set(groups.values()))
    rows = []
    for name in names:
        members = [pid for pid, g in groups.items() if g == name]
        scored = [score_of[p] for p in members if p in score_of]
        rows.append(
            {
                "group": name,
                "prompts": len(members),
                "scored": len(scored),
                "left_out": sum(1 for p in members if p in result.left_out),
                "selected": sum(1 for p in members if p in selected),
                "mean_score": float(np.mean(scored)) if scored else None,
            }
        )
    table = Table(title=title)
    for col in ("group", "prompts", "scored", "left out", "selected", "mean LIM score"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for r in rows:
        ms = "-" if r["mean_score"] is None else f"{r['mean_score']:.3f}"
        table.add_row(r["group"], str(r["prompts"]), str(r["scored"]), str(r["left_out"]), str(r["selected"]), ms)
    total_sel = len(selected & set(score_of))
    table.add_row(
        "total", str(len(groups)), str(len(result)), str(len(result.left_out)), str(total_sel), "", style="bold"
    )
    console = Console(width=100, record=True, force_terminal=False)
    with console.capture() as cap:
        console.print(table)
        if result.r_avg is not None and len(result.r_avg):
            console.print("average reward curve r_avg: " + " ".join(f"{x:.2f}" for x in result.r_avg))
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
        "r_avg": None if result.r_avg is None else [float(x) for x in result.r_avg],
        "groups": rows,
    }
    return cap.get(), summary
