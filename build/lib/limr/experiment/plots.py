"""The study's figures (PNG, written atomically): held-out accuracy vs step and vs rollout tokens (mean and
one-std band per arm, like the paper's Figure 3), and the LIM score histogram by skill."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limr.atomic import atomic_file
from limr.experiment.results import ArmResult


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def plot_accuracy(arms: list[ArmResult], path: Path, x: str = "step") -> Path:
    """Held-out accuracy per arm, mean over seeds with a one-std band, against steps or rollout tokens."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    for a in arms:
        xs = np.array(a.steps if x == "step" else a.tokens_mean, dtype=float)
        if x != "step":
            xs = xs / 1e3
        m, s = np.array(a.acc_mean) * 100, np.array(a.acc_std) * 100
        ax.plot(xs, m, lw=2, marker="o", ms=3, label=f"{a.name} ({a.pool_size} prompts)")
        ax.fill_between(xs, m - s, m + s, alpha=0.18)
    ax.set_xlabel("training step" if x == "step" else "rollout tokens generated (thousands)")
    ax.set_ylabel("held-out greedy accuracy (%)")
    ax.set_title(f"held-out accuracy vs {'step' if x == 'step' else 'rollout tokens'} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_score_histogram(scores: np.ndarray, skills: list[str], threshold: float, path: Path) -> Path:
    """LIM scores of the FULL source run's prompts, stacked by skill, with the selection threshold."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    lo = min(-1.0, float(np.floor(scores.min() * 4) / 4)) if len(scores) else -1.0
    bins = np.linspace(lo, 1.0, int(round((1.0 - lo) / 0.05)) + 1)
    names = sorted(set(skills))
    data = [scores[np.array(skills) == n] for n in names]
    ax.hist(data, bins=bins, stacked=True, label=names)
    ax.axvline(threshold, color="black", ls="--", lw=1.2, label=f"threshold {threshold}")
    ax.set_xlabel("LIM score")
    ax.set_ylabel("prompts")
    ax.set_title(f"LIM scores of the FULL run ({len(scores)} prompts, {int((scores >= threshold).sum())} selected)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out
