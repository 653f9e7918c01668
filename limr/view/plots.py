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


def plot_trajectories(result: ScoreResult, path: str | Path, n_high: int = 4, n_low: int = 4) -> Path:
    """PNG: the average reward curve and the trajectories of the highest- and lowest-scoring prompts."""
    plt = pyplot()
    if result.trajectories is None or len(result) == 0:
        raise ValueError("plotting needs per-epoch trajectories of at least one scored prompt")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    epochs = np.arange(1, result.epochs + 1)
    order = np.argsort(-result.scores, kind="stable")
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    for rank, i in enumerate(order[:n_high]):
        ax.plot(
            epochs,
            result.trajectories[i],
            color="tab:green",
            alpha=0.75,
            lw=1.2,
            label="high LIM score" if rank == 0 else None,
        )
    for rank, i in enumerate(order[::-1][:n_low]):
        ax.plot(
            epochs,
            result.trajectories[i],
            color="tab:red",
            alpha=0.6,
            lw=1.0,
            ls="--",
            label="low LIM score" if rank == 0 else None,
        )
    ax.plot(epochs, result.r_avg, color="black", lw=3, label="average reward $r_{avg}$")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (share of correct samples)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"LIM: sample trajectories vs the average ({len(result)} prompts scored)")
    ax.legend(loc="lower right", fontsize=8)
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
