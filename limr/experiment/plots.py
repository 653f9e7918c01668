"""The study's figures (PNG, written atomically): held-out accuracy vs step and vs rollout tokens (mean and
one-std band per arm, like the paper's Figure 3), (the LIM score histogram by skill: limr.view.plots)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limr.experiment.results import ArmResult
from limr.view.plots import pyplot, save_png


def plot_accuracy(arms: list[ArmResult], path: Path, x: str = "step") -> Path:
    """Held-out accuracy per arm, mean over seeds with a one-std band, against steps or rollout tokens."""
    plt = pyplot()
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
    out = save_png(fig, path)
    plt.close(fig)
    return out
