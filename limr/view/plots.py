"""The LIM picture as PNG files (matplotlib, written atomically): sample trajectories against the average curve
(in the style of Figure 2 of the LIMR paper) and the score histogram with a threshold. Used by `limr demo`, the
study's report and the experiment trackers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limr.atomic import atomic_file
from limr.scoring.result import ScoreResult


def pyplot():  # noqa: ANN201 - matplotlib.pyplot, imported on first use
    """matplotlib.pyplot with the file-only backend (never needs a display), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> Path:
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def distinct_trajectories(trajectories: np.ndarray, order: np.ndarray, n: int) -> list[tuple[int, int]]:
    """The first `n` prompts in `order` whose trajectories differ, each with how many scored prompts share it.

    Why: in the paper's regime the lowest scorers are mostly never-solved prompts, all the same flat line at 0; drawn
    one by one they hide each other and the plot shows one line where there are dozens. Drawn once with a count,
    every shape that LIM drops is visible and its weight is stated.
    """
    keys = [tuple(np.round(row, 9)) for row in trajectories]
    counts: dict[tuple, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    picked: list[tuple[int, int]] = []
    seen: set[tuple] = set()
    for i in order:
        if keys[i] in seen:
            continue
        seen.add(keys[i])
        picked.append((int(i), counts[keys[i]]))
        if len(picked) == n:
            break
    return picked


def plot_trajectories(result: ScoreResult, path: str | Path, n_high: int = 4, n_low: int = 4) -> Path:
    """PNG: the average reward curve and the distinct trajectories of the highest- and lowest-scoring prompts.

    A trajectory shared by several prompts is drawn once and labelled with how many share it ("x20").
    """
    plt = pyplot()
    if result.trajectories is None or len(result) == 0:
        raise ValueError("plotting needs per-epoch trajectories of at least one scored prompt")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    epochs = np.arange(1, result.epochs + 1)
    order = np.argsort(-result.scores, kind="stable")
    high = distinct_trajectories(result.trajectories, order, n_high)
    low = distinct_trajectories(result.trajectories, order[::-1], n_low)
    low = [(i, c) for i, c in low if i not in {j for j, _ in high}]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    styles = {
        "high": {"color": "tab:green", "alpha": 0.75, "lw": 1.2, "label": "high LIM score"},
        "low": {"color": "tab:red", "alpha": 0.6, "lw": 1.0, "ls": "--", "label": "low LIM score"},
    }
    at_end: dict[float, int] = {}  # counts ending at the same accuracy are stacked, not printed over each other
    for group, picked in (("high", high), ("low", low)):
        style = dict(styles[group])
        label = style.pop("label")
        for rank, (i, count) in enumerate(picked):
            ax.plot(epochs, result.trajectories[i], label=label if rank == 0 else None, **style)
            if count > 1:
                end = round(float(result.trajectories[i][-1]), 6)
                stacked = at_end.get(end, 0)
                at_end[end] = stacked + 1
                ax.annotate(
                    f"x{count}",
                    (epochs[-1], result.trajectories[i][-1]),
                    xytext=(4, 8 * stacked),
                    textcoords="offset points",
                    va="center",
                    fontsize=7,
                    color=style["color"],
                )
    ax.plot(epochs, result.r_avg, color="black", lw=3, label="average reward $r_{avg}$")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (share of correct samples)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(epochs[0] - 0.1, epochs[-1] + 0.35)
    ax.set_xticks(epochs)
    ax.set_title(f"LIM: trajectories vs the average ({len(result)} prompts scored; xN: N prompts share the line)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return path


def plot_score_histogram(
    scores: np.ndarray, skills: list[str], threshold: float, path: Path, what: str = "the FULL run"
) -> Path:
    """LIM scores of a run's prompts (the study: the FULL source run), stacked by skill, with the threshold."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    lo = min(-1.0, float(np.floor(scores.min() * 4) / 4)) if len(scores) else -1.0
    bins = np.linspace(lo, 1.0, int(round((1.0 - lo) / 0.05)) + 1)
    names = sorted(set(skills))
    data = [scores[np.array(skills) == n] for n in names]
    ax.hist(data, bins=bins, stacked=True, label=names)
    ax.axvline(threshold, color="black", ls="--", lw=1.2, label=f"threshold {threshold}")
    ax.set_xlabel("LIM score")
    ax.set_ylabel("prompts")
    ax.set_title(f"LIM scores of {what} ({len(scores)} prompts, {int((scores >= threshold).sum())} selected)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = save_png(fig, path)
    plt.close(fig)
    return out
