"""The study's figures (PNG, written atomically): held-out accuracy vs step and vs rollout tokens (mean and
one-std band per arm, like the paper's Figure 3), and the leaderboard (the LIM score histogram by skill:
limr.view.plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def plot_leaderboard(lb: dict[str, Any], path: Path) -> Path:
    """Forest plot: each arm's final accuracy with its interval, and its differences from FULL and RAND."""
    plt = pyplot()
    rows = lb["rows"][::-1]  # best on top
    y = np.arange(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * len(rows) + 2), dpi=120, sharey=True)
    for ax, key in ((left, "final"),):
        m = np.array([r[key]["mean"] for r in rows]) * 100
        lo = m - np.array([r[key]["lo"] for r in rows]) * 100
        hi = np.array([r[key]["hi"] for r in rows]) * 100 - m
        ax.errorbar(m, y, xerr=[lo, hi], fmt="o", capsize=3)
        ax.set_xlabel("final held-out accuracy (%)")
    for off, key, label in ((0.12, "vs_full", "minus FULL"), (-0.12, "vs_rand", "minus RAND")):
        pts = [(i, r[key]) for i, r in enumerate(rows) if r[key] is not None]
        if not pts:
            continue
        m = np.array([d["mean"] for _, d in pts]) * 100
        err = [m - np.array([d["lo"] for _, d in pts]) * 100, np.array([d["hi"] for _, d in pts]) * 100 - m]
        right.errorbar(m, np.array([i for i, _ in pts]) + off, xerr=err, fmt="o", capsize=3, label=label)
    right.axvline(0, color="black", lw=1)
    right.set_xlabel("difference (points)")
    right.legend(fontsize=8)
    left.set_yticks(y, [f"{r['arm']} ({r['pool_size']})" for r in rows])
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(f"leaderboard: 95% intervals, {lb['method']} ({lb['problems']} problems)", fontsize=9)
    fig.tight_layout()
    out = save_png(fig, path)
    plt.close(fig)
    return out
