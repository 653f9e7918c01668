"""A learned early-LIM predictor: a mapping from early features to the final score, fit on finished runs.

The unsupervised predictors of `limr.algo.early_lim` each assume a shape for the epochs to come. Finished
runs of the same kind (same model family, pool and schedule) show which shape holds. `fit_learned` turns
every prompt of every finished run, cut at several k, into one example:

    features: the `seen`, `ravg` and `trend` predicted scores, the trend's selection probability, slope and
              level, the prompt's last and mean accuracy seen, k / E, r_avg at k and the trend's final r_avg
    targets:  the prompt's final LIM score (ridge regression) and whether it was selected (L2-regularised
              logistic regression, fit by Newton's method: a calibrated probability of selection)

It assumes the run it predicts is like the runs it was fit on; the benchmark fits it leave-one-run-out.
The learned predictor selects a prompt when its probability of selection is >= 0.5.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from limr.algo.early_lim import EarlyLimError, EarlyPrediction, fit_trend, predict_final
from limr.algo.lim import lim_from_accuracy

FEATURES: tuple[str, ...] = (
    "seen_score",
    "ravg_score",
    "trend_score",
    "trend_p_select",
    "trend_slope",
    "trend_level",
    "last_acc",
    "mean_acc",
    "fraction_seen",
    "r_avg_seen",
    "r_avg_final_trend",
)


@dataclass(frozen=True)
class FinishedRun:
    """A finished run for fitting: its accuracy matrix (P, E) (NaN = no samples) and samples per cell."""

    acc: np.ndarray
    samples: float


@dataclass(frozen=True)
class LearnedPredictor:
    threshold: float
    mean: np.ndarray  # (F,) feature means (standardisation)
    std: np.ndarray  # (F,) feature standard deviations
    score_coef: np.ndarray  # (F + 1,) ridge weights, intercept last
    select_coef: np.ndarray  # (F + 1,) logistic weights, intercept last
    examples: int

    def predict(self, acc: np.ndarray, epochs_seen: int, epochs_total: int, samples: float) -> EarlyPrediction:
        base, x = early_features(acc, epochs_seen, epochs_total, self.threshold, samples)
        z = _design((x - self.mean) / self.std)
        scores = z @ self.score_coef
        p = _sigmoid(z @ self.select_coef)
        return EarlyPrediction(
            kept=base.kept,
            scores=scores,
            p_select=p,
            selected=p >= 0.5,
            r_avg=base.r_avg,
            trajectories=base.trajectories,
            epochs_seen=base.epochs_seen,
            epochs_total=base.epochs_total,
            threshold=self.threshold,
            predictor="learned",
        )


def early_features(
    acc: np.ndarray, epochs_seen: int, epochs_total: int, threshold: float, samples: float
) -> tuple[EarlyPrediction, np.ndarray]:
    """The trend prediction and the (K, F) feature matrix (columns: FEATURES) of the prompts it keeps."""
    k, e = epochs_seen, epochs_total
    trend = predict_final(acc, k, e, threshold, "trend", samples=samples, draws=100)
    seen = predict_final(acc, k, e, threshold, "seen", samples=samples)
    ravg = predict_final(acc, k, e, threshold, "ravg", samples=samples)
    traj = trend.trajectories
    model = fit_trend(traj, samples)
    n = len(traj)
    x = np.column_stack(
        [
            seen.scores,
            ravg.scores,
            trend.scores,
            trend.p_select,
            model.slope,
            model.level,
            traj[:, -1] if n else np.zeros(0),
            traj.mean(axis=1) if n else np.zeros(0),
            np.full(n, k / e),
            np.full(n, trend.r_avg[k - 1]),
            np.full(n, trend.r_avg[-1]),
        ]
    )  # (K, F)
    return trend, x


def fit_learned(
    runs: Sequence[FinishedRun],
    threshold: float,
    fractions: Iterable[float] = (0.25, 0.33, 0.5, 0.67, 0.75),
    ridge: float = 1.0,
) -> LearnedPredictor:
    """Fit on every run cut after round(f * E) epochs for each fraction f (at least 1, at most E - 1)."""
    xs, scores, chosen = [], [], []
    for run in runs:
        final = lim_from_accuracy(run.acc)
        e = run.acc.shape[1]
        full_score = np.full(run.acc.shape[0], np.nan)
        full_score[final.kept] = final.scores
        for k in sorted({min(e - 1, max(1, round(f * e))) for f in fractions}):
            base, x = early_features(run.acc, k, e, threshold, run.samples)
            target = full_score[base.kept]  # (K,)
            ok = np.isfinite(target)  # prompts LIM leaves out of the final run have no score to learn
            xs.append(x[ok])
            scores.append(target[ok])
            chosen.append(target[ok] >= threshold)
    if not xs or sum(len(x) for x in xs) < 2 * len(FEATURES):
        raise EarlyLimError("fitting the learned predictor needs finished runs with more prompts")
    x = np.concatenate(xs)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = _design((x - mean) / std)
    return LearnedPredictor(
        threshold=float(threshold),
        mean=mean,
        std=std,
        score_coef=_ridge(z, np.concatenate(scores), ridge),
        select_coef=_logistic(z, np.concatenate(chosen).astype(np.float64), ridge),
        examples=len(x),
    )


def _design(z: np.ndarray) -> np.ndarray:
    return np.column_stack([z, np.ones(len(z))])


def _ridge(z: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    reg = lam * np.eye(z.shape[1])
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(z.T @ z + reg, z.T @ y)


def _logistic(z: np.ndarray, y: np.ndarray, lam: float, iters: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (IRLS); converges in a handful of steps."""
    reg = lam * np.eye(z.shape[1])
    reg[-1, -1] = 0.0
    w = np.zeros(z.shape[1])
    for _ in range(iters):
        p = _sigmoid(z @ w)
        grad = z.T @ (p - y) + reg @ w
        hess = (z * (p * (1 - p))[:, None]).T @ z + reg + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(x, -500, 500)))
    return out
