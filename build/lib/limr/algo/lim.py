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


def accuracy_from_counts(correct: np.ndarray, total: np.ndarray) -> np.ndarray:
    """(P, E) share of correct samples from (P, E) counts; NaN where a prompt has no samples in an epoch (the
    gap LIM fills), as `EpochCounts.accuracy` gives it for a run in a store."""
    correct, total = np.asarray(correct), np.asarray(total)
    out = np.full(total.shape, np.nan)
    np.divide(correct, total, out=out, where=total > 0)
    return out


def fill_missing_epochs(acc: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Fill NaN (= no samples in that epoch) the way the released script does; returns a new array.

    The script makes one left-to-right pass `if a[k] missing and a[k+1] present: a[k] = a[k+1]`. Position
    k+1 is only written at step k+1, so every read sees the original value: a missing epoch takes the next
    epoch's value when that one was observed, and nothing else is filled. In particular a run of two
    missing epochs keeps its first one missing, and a missing last epoch is never filled.

    Works one epoch column at a time and keeps the input's memory layout, so an epoch-major accumulator
    (`EpochCounts.accuracy()`, a (P, E) view of (E, P) storage) is filled with contiguous vector ops.
    `overwrite` fills a float64 `acc` in place (a large run's accuracy matrix is not worth a second copy).
    """
    acc = _as_matrix(acc)
    out = acc if overwrite else acc.copy(order="K")
    for k in range(acc.shape[1] - 1):
        col, nxt = out[:, k], out[:, k + 1]  # column k+1 is still the original here
        np.copyto(col, nxt, where=np.isnan(col) & ~np.isnan(nxt))
    return out


def lim_scores(traj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LIM scores (P,) and the average trajectory r_avg (E,) of complete trajectories (P, E), no NaN.

    When r_avg is 1 in every epoch the denominator is 0; then every kept prompt was always correct, equals
    the average exactly, and scores 1 (the released script would divide by zero).
    """
    traj = _as_matrix(traj)
    p, e = traj.shape
    if p == 0 or e == 0:
        return np.zeros(p), np.zeros(e)
    if any(np.isnan(traj[:, k]).any() for k in range(e)):
        raise ValueError("trajectories contain NaN; fill or drop incomplete prompts first")
    r_avg = np.array([traj[:, k].mean() for k in range(e)])  # (E,)
    sq_diff = np.zeros(p)  # (P,) sum over epochs of (r_i^k - r_avg^k)^2, one column at a time
    diff = np.empty(p)
    for k in range(e):
        np.subtract(traj[:, k], r_avg[k], out=diff)
        np.multiply(diff, diff, out=diff)
        sq_diff += diff
    max_diff = float(((1.0 - r_avg) ** 2).sum())
    if max_diff == 0.0:
        return np.ones(p), r_avg
    return 1.0 - sq_diff / max_diff, r_avg


@dataclass(frozen=True)
class LimResult:
    """LIM applied to an accuracy matrix: which rows were kept, their filled trajectories and scores."""

    kept: np.ndarray  # (P,) bool: rows with a complete trajectory after filling
    trajectories: np.ndarray  # (K, E) filled trajectories of the kept rows
    scores: np.ndarray  # (K,)
    r_avg: np.ndarray  # (E,)
    epochs: int  # E, the number of epochs scored


def lim_from_accuracy(acc: np.ndarray, max_epochs: int | None = None, overwrite: bool = False) -> LimResult:
    """Truncate to the first `max_epochs` epochs, fill gaps, keep complete rows, score them.

    Truncation comes first, as in the released script (it only ever loads `max_epochs` epochs), so a gap in
    the last scored epoch is not filled from an epoch beyond the window. `overwrite` lets the gap filling
    write into `acc` (float64) instead of a copy.
    """
    acc = _as_matrix(acc)
    if max_epochs is not None:
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        acc = acc[:, :max_epochs]
    filled = fill_missing_epochs(acc, overwrite=overwrite)
    p, e = filled.shape
    kept = np.zeros(p, bool) if e == 0 else np.ones(p, bool)
    for k in range(e):
        kept &= ~np.isnan(filled[:, k])
    traj = filled if kept.all() else _rows(filled, kept)  # (K, E); no copy in the common all-complete case
    scores, r_avg = lim_scores(traj)
    return LimResult(kept=kept, trajectories=traj, scores=scores, r_avg=r_avg, epochs=acc.shape[1])


def _as_matrix(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected a (prompts, epochs) array, got shape {a.shape}")
    return a


def _rows(a: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """a[keep] in a's layout: column by column when a is column-major (a gather per contiguous column)."""
    if not a.flags.f_contiguous or a.flags.c_contiguous:
        out: np.ndarray = a[keep]
        return out
    out = np.empty((a.shape[1], int(keep.sum()))).T  # (K, E), column-major like `a`
    for k in range(a.shape[1]):
        np.compress(keep, a[:, k], out=out[:, k])
    return out
