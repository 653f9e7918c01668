"""Scoring early-LIM predictors against the final selection of finished runs. Pure numpy.

For a finished run (per prompt and epoch counts) and a number k of epochs seen, compare what a predictor
selects from the first k epochs with what LIM selects from all E: precision, recall and F1 of the selected
set (prompts LIM leaves out count as not selected), Spearman correlation of predicted and final scores
(prompts scored by both), the Brier score of the selection probability, and the share of the run's rollouts
that stopping after k epochs saves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from limr.algo.early_lim import EarlyPrediction, fit_trend, predict_final
from limr.algo.lim import accuracy_from_counts, lim_from_accuracy

Predict = Callable[[np.ndarray, int], EarlyPrediction]  # (acc (P, E), k) -> prediction


@dataclass(frozen=True)
class EarlyScore:
    """How well one predictor, after k of E epochs, recovers the final selection of one run."""

    predictor: str
    epochs_seen: int
    epochs_total: int
    selected_final: int
    selected_early: int
    precision: float
    recall: float
    f1: float
    spearman: float
    brier: float
    predicted_precision: float
    rollouts_saved: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def final_selection(acc: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(P,) final LIM scores (NaN where left out) and (P,) bool selection of the full run."""
    res = lim_from_accuracy(acc)
    scores = np.full(acc.shape[0], np.nan)
    scores[res.kept] = res.scores
    return scores, np.nan_to_num(scores, nan=-np.inf) >= threshold


def evaluate_prediction(
    pred: EarlyPrediction, final_scores: np.ndarray, final_selected: np.ndarray, total: np.ndarray
) -> EarlyScore:
    """Compare one prediction (rows `pred.kept` of the run) with the run's final scores and selection."""
    early = np.zeros(len(final_selected), bool)
    early[pred.kept] = pred.selected
    tp = int((early & final_selected).sum())
    precision = tp / early.sum() if early.any() else float("nan")
    recall = tp / final_selected.sum() if final_selected.any() else float("nan")
    f1 = 2 * tp / (early.sum() + final_selected.sum()) if early.any() or final_selected.any() else float("nan")
    final_kept = final_scores[pred.kept]  # (K,)
    both = np.isfinite(final_kept)
    outcome = final_selected[pred.kept].astype(np.float64)
    total = np.asarray(total, np.float64)
    all_rollouts = float(total.sum())
    return EarlyScore(
        predictor=pred.predictor,
        epochs_seen=pred.epochs_seen,
        epochs_total=pred.epochs_total,
        selected_final=int(final_selected.sum()),
        selected_early=int(early.sum()),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        spearman=spearman(pred.scores[both], final_kept[both]),
        brier=float(((pred.p_select - outcome) ** 2).mean()) if len(outcome) else float("nan"),
        predicted_precision=pred.predicted_precision(),
        rollouts_saved=1.0 - float(total[:, : pred.epochs_seen].sum()) / all_rollouts if all_rollouts else 0.0,
    )


def evaluate_run(
    correct: np.ndarray,
    total: np.ndarray,
    threshold: float,
    predictors: dict[str, Predict] | Iterable[str],
    ks: Iterable[int] | None = None,
) -> list[EarlyScore]:
    """Every predictor at every k (default 1..E-1) on one finished run given as (P, E) counts.

    `predictors` names built-in predictors (run with the run's mean samples per prompt and epoch) or maps
    names to callables, e.g. a learned predictor fit on other runs.
    """
    correct, total = np.asarray(correct), np.asarray(total)
    acc = accuracy_from_counts(correct, total)
    e = int(np.shape(acc)[-1])
    samples = float(total[total > 0].mean()) if (total > 0).any() else 1.0
    if not isinstance(predictors, dict):
        predictors = {name: _builtin(name, e, threshold, samples) for name in predictors}
    final_scores, final_selected = final_selection(acc, threshold)
    out = []
    for k in ks if ks is not None else range(1, e):
        for predict in predictors.values():
            out.append(evaluate_prediction(predict(acc, k), final_scores, final_selected, total))
    return out


def replay_agreement(
    correct: np.ndarray, total: np.ndarray, epochs_seen: int, threshold: float, draws: int = 100, seed: int = 0
) -> float:
    """Mean F1 between a run's final selection and replays of it that share its first k epochs.

    The target an early predictor chases is itself noisy: a prompt's last epochs are shares of n samples, so a
    run repeated from epoch k with the same model and the same learning would select a somewhat different set.
    This estimates how much: each prompt's probability of a correct sample per epoch is its logit-linear trend
    fit on ALL E epochs (`fit_trend`, no recency weighting, slopes shrunk toward the population), epochs k..E-1
    are redrawn from the binomial with the run's own sample counts, and the replay is scored with LIM. A
    predictor that knew every prompt's true curve would agree with the real run about as well as a replay does,
    so an F1 near this value is as good as selecting after k epochs can be on this run (it is an estimate: the
    trend is a model of the true curves, not them).
    """
    correct, total = np.asarray(correct), np.asarray(total, np.float64)
    acc = accuracy_from_counts(correct, total)
    e, k = int(np.shape(acc)[-1]), int(epochs_seen)
    if not 1 <= k < e:
        raise ValueError(f"epochs seen must be in 1..{e - 1}, got {k}")
    _, final_selected = final_selection(acc, threshold)
    full = lim_from_accuracy(acc)
    traj = np.asarray(full.trajectories)
    if len(traj) == 0:
        return float("nan")
    samples = float(total[total > 0].mean())
    model = fit_trend(traj, samples, recency=1.0, damping=1.0)
    p_true = 1.0 / (1.0 + np.exp(-(model.level[:, None] + model.slope[:, None] * (np.arange(k, e) - (e - 1)))))
    rows = np.flatnonzero(full.kept)
    n = total[rows, k:].astype(np.int64)
    rng = np.random.default_rng(seed)
    f1s = []
    for _ in range(max(1, draws)):
        replay = acc.copy()
        redrawn = rng.binomial(n, p_true) / np.maximum(n, 1)
        replay[rows, k:] = np.where(n > 0, redrawn, np.nan)
        _, selected = final_selection(replay, threshold)
        both = selected.sum() + final_selected.sum()
        f1s.append(2 * float((selected & final_selected).sum()) / both if both else float("nan"))
    return float(np.nanmean(f1s))


def _builtin(name: str, epochs_total: int, threshold: float, samples: float) -> Predict:
    def predict(acc: np.ndarray, k: int) -> EarlyPrediction:
        return predict_final(acc, k, epochs_total, threshold, predictor=name, samples=samples)

    return predict


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN for fewer than 2 values or a constant input."""
    if len(a) < 2:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])  # first index of each run of equal values
    ends = np.r_[starts[1:], len(xs)]
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1..end
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks
