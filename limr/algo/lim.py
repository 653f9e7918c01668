"""Learning Impact Measurement (LIM) of "LIMR: Less is More for RL Scaling" (Li, Zou, Liu 2025), pure numpy.

A prompt's trajectory r_i^k is its accuracy (share of correct samples) in epoch k. LIM compares it with the
average trajectory r_avg^k of all kept prompts:

    s_i = 1 - sum_k (r_i^k - r_avg^k)^2 / sum_k (1 - r_avg^k)^2

so a prompt that learns like the model as a whole scores near 1. Missing epochs follow the released
`lim_selection.py` exactly (see `fill_missing_epochs`); prompts that still miss an epoch are left out and
do not contribute to r_avg.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def fill_missing_epochs(acc: np.ndarray) -> np.ndarray:
    """Fill NaN (= no samples in that epoch) the way the released script does; returns a new array.

    The script makes one left-to-right pass `if a[k] missing and a[k+1] present: a[k] = a[k+1]`. Position
    k+1 is only written at step k+1, so every read sees the original value: a missing epoch takes the next
    epoch's value when that one was observed, and nothing else is filled. In particular a run of two
    missing epochs keeps its first one missing, and a missing last epoch is never filled.
    """
    acc = np.asarray(acc, dtype=np.float64)
    if acc.ndim != 2:
        raise ValueError(f"expected a (prompts, epochs) array, got shape {acc.shape}")
    out = acc.copy()
    if acc.shape[1] < 2:
        return out
    fill = np.isnan(acc[:, :-1]) & ~np.isnan(acc[:, 1:])  # (P, E-1)
    out[:, :-1][fill] = acc[:, 1:][fill]
    return out


def lim_scores(traj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LIM scores (P,) and the average trajectory r_avg (E,) of complete trajectories (P, E), no NaN.

    When r_avg is 1 in every epoch the denominator is 0; then every kept prompt was always correct, equals
    the average exactly, and scores 1 (the released script would divide by zero).
    """
    traj = np.asarray(traj, dtype=np.float64)
    if traj.ndim != 2:
        raise ValueError(f"expected a (prompts, epochs) array, got shape {traj.shape}")
    if traj.shape[0] == 0 or traj.shape[1] == 0:
        return np.zeros(traj.shape[0]), np.zeros(traj.shape[1])
    if np.isnan(traj).any():
        raise ValueError("trajectories contain NaN; fill or drop incomplete prompts first")
    r_avg = traj.mean(axis=0)  # (E,)
    diff = traj - r_avg  # (P, E)
    sq_diff = np.einsum("pe,pe->p", diff, diff)  # (P,) row sums of squares without another (P, E) temporary
    max_diff = float(((1.0 - r_avg) ** 2).sum())
    if max_diff == 0.0:
        return np.ones(traj.shape[0]), r_avg
    return 1.0 - sq_diff / max_diff, r_avg


@dataclass(frozen=True)
class LimResult:
    """LIM applied to an accuracy matrix: which rows were kept, their filled trajectories and scores."""

    kept: np.ndarray  # (P,) bool: rows with a complete trajectory after filling
    trajectories: np.ndarray  # (K, E) filled trajectories of the kept rows
    scores: np.ndarray  # (K,)
    r_avg: np.ndarray  # (E,)
    epochs: int  # E, the number of epochs scored


def lim_from_accuracy(acc: np.ndarray, max_epochs: int | None = None) -> LimResult:
    """Truncate to the first `max_epochs` epochs, fill gaps, keep complete rows, score them.

    Truncation comes first, as in the released script (it only ever loads `max_epochs` epochs), so a gap in
    the last scored epoch is not filled from an epoch beyond the window.
    """
    acc = np.asarray(acc, dtype=np.float64)
    if max_epochs is not None:
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        acc = acc[:, :max_epochs]
    filled = fill_missing_epochs(acc)
    kept = ~np.isnan(filled).any(axis=1) if filled.shape[1] else np.zeros(filled.shape[0], bool)
    traj = filled if kept.all() else filled[kept]  # (K, E); no copy in the common all-complete case
    scores, r_avg = lim_scores(traj)
    return LimResult(kept=kept, trajectories=traj, scores=scores, r_avg=r_avg, epochs=acc.shape[1])
