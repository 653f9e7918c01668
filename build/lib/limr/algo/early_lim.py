"""Early LIM: predict each prompt's final LIM score, and whether it will be selected, from the first k epochs.

LIM (`limr.algo.lim`) needs the whole run: the score of prompt i over E epochs is

    s_i = 1 - sum_t (r_i^t - r_avg^t)^2 / sum_t (1 - r_avg^t)^2,   t = 0..E-1.

After k < E epochs the first k terms of both sums are known; the predictors differ in how they fill in the
E - k epochs still to come. Each works on the gap-filled (K, k) trajectories `lim_from_accuracy` keeps and
assumes, for the future epochs:

- `seen`: nothing: LIM over the k epochs seen, as if the run ended at k (the obvious baseline).
- `ravg`: every prompt stays at its current level (mean of its last two epochs) while the average curve
  keeps the logit-linear trend it had so far (`extrapolate_curve`). A prompt that is never solved then
  scores low once r_avg is predicted to pass 0.5, which `seen` misses.
- `trend` (default): each prompt follows its own logit-linear trend, its slope shrunk toward the population's
  by empirical Bayes (James-Stein: a prompt with little evidence of its own learns like the others); r_avg
  is the mean of those predicted curves, so the prediction is self-consistent. The expected score adds the
  binomial noise p(1 - p) / n of the epochs to come (a final accuracy is a share of n samples, so even a
  perfectly predicted prompt deviates from its curve). `p_select` is a posterior-predictive probability:
  the share of `draws` simulated completions of the run (slopes drawn from their posterior, n samples per
  epoch drawn from the binomial) in which the prompt's final score reaches the threshold.

Every predictor assumes the run continues as it started: the same pool, sampling and learning rate; a
change of regime after k (a learning-rate decay, a curriculum, a plateau) is not foreseeable from the first
k epochs. `limr.algo.early_learned` adds a predictor fit on other finished runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from limr.algo.lim import lim_from_accuracy

PREDICTORS: tuple[str, ...] = ("seen", "ravg", "trend")
DEFAULT_PREDICTOR = "trend"
_EPS = 1e-4  # accuracies are clipped to [_EPS, 1 - _EPS] before a logit
RECENCY = 0.7  # weight of epoch t of k in a trend: RECENCY ** (k - 1 - t)
DAMPING = 0.9  # each future epoch adds DAMPING times the previous one's rise (in logits)


class EarlyLimError(ValueError):
    """An early-LIM request that cannot be answered (k out of range, unknown predictor...)."""


@dataclass(frozen=True)
class EarlyPrediction:
    """Predicted final LIM of the prompts with a complete k-epoch trajectory."""

    kept: np.ndarray  # (P,) bool: rows with a complete trajectory over the k epochs seen
    scores: np.ndarray  # (K,) predicted final LIM score
    p_select: np.ndarray  # (K,) probability that the final score is >= threshold (0/1 for the baselines)
    selected: np.ndarray  # (K,) bool: predicted score >= threshold
    r_avg: np.ndarray  # (E,) r_avg seen for t < k, predicted for t >= k
    trajectories: np.ndarray  # (K, k) filled accuracies seen
    epochs_seen: int  # k
    epochs_total: int  # E
    threshold: float
    predictor: str

    def predicted_precision(self) -> float:
        """Expected share of the predicted selection that the final run selects too (NaN if none selected)."""
        return float(self.p_select[self.selected].mean()) if self.selected.any() else float("nan")

    def predicted_recall(self) -> float:
        """Expected share of the final selection (among these prompts) that the prediction catches."""
        total = float(self.p_select.sum())
        return float(self.p_select[self.selected].sum()) / total if total > 0 else float("nan")


def predict_final(
    acc: np.ndarray,
    epochs_seen: int,
    epochs_total: int,
    threshold: float,
    predictor: str = DEFAULT_PREDICTOR,
    samples: float = 8.0,
    draws: int = 200,
    seed: int = 0,
) -> EarlyPrediction:
    """Predict final LIM from the first `epochs_seen` epochs of the accuracy matrix `acc` (P, >= k).

    `acc` is what the scorer builds (`EpochCounts.accuracy()`, NaN = no samples); only its first k columns are
    read, gaps are filled as LIM fills them. `samples` is the number of samples per prompt and epoch (the
    binomial n of an accuracy), `draws` the simulated completions behind the `trend` probability.
    """
    k, e = int(epochs_seen), int(epochs_total)
    if predictor not in PREDICTORS:
        raise EarlyLimError(f"unknown predictor {predictor!r}; choose one of {', '.join(PREDICTORS)}")
    if not 1 <= k <= e:
        raise EarlyLimError(f"epochs seen must be in 1..{e} (the run's epochs), got {k}")
    acc = np.asarray(acc, np.float64)
    if acc.ndim != 2 or acc.shape[1] < k:
        raise EarlyLimError(f"need a (prompts, >= {k} epochs) accuracy matrix, got shape {acc.shape}")
    if not samples > 0:
        raise EarlyLimError(f"samples per prompt and epoch must be > 0, got {samples}")
    seen = lim_from_accuracy(acc, max_epochs=k)
    traj = np.asarray(seen.trajectories)  # (K, k)
    if predictor == "seen" or k == e or len(traj) == 0:
        scores, r_avg = seen.scores, seen.r_avg
        p_select = (scores >= threshold).astype(np.float64)
    elif predictor == "ravg":
        scores, r_avg = _predict_ravg(traj, e, samples)
        p_select = (scores >= threshold).astype(np.float64)
    else:
        model = fit_trend(traj, samples)
        future = model.predict(np.arange(k, e))  # (K, E - k)
        scores, r_avg = expected_scores(traj, future, samples)
        p_select = model.p_select(traj, e, threshold, samples, draws, seed)
    return EarlyPrediction(
        kept=seen.kept,
        scores=scores,
        p_select=p_select,
        selected=scores >= threshold,
        r_avg=r_avg,
        trajectories=traj,
        epochs_seen=k,
        epochs_total=e,
        threshold=float(threshold),
        predictor=predictor,
    )


def expected_scores(traj: np.ndarray, future: np.ndarray, samples: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected final LIM scores (K,) and r_avg (E,) given accuracies seen (K, k) and predicted (K, E - k).

    Each future accuracy is a share of `samples` draws with the predicted probability p, so its expected
    squared deviation from r_avg is (p - r_avg)^2 + p (1 - p) / n.
    """
    r_avg = np.concatenate([traj.mean(axis=0), future.mean(axis=0)])  # (E,)
    k = traj.shape[1]
    sq = ((traj - r_avg[:k]) ** 2).sum(axis=1)  # (K,)
    sq += ((future - r_avg[k:]) ** 2 + future * (1.0 - future) / samples).sum(axis=1)
    return _score(sq, r_avg), r_avg


def _score(sq_diff: np.ndarray, r_avg: np.ndarray) -> np.ndarray:
    denom = float(((1.0 - r_avg) ** 2).sum())
    return np.ones_like(sq_diff) if denom == 0.0 else 1.0 - sq_diff / denom


def extrapolate_curve(curve: np.ndarray, epochs_total: int) -> np.ndarray:
    """Continue an accuracy curve (k,) to (E,) along its least-squares line in logit space (flat if k < 2).

    A logit-linear curve is the simplest that rises and saturates below 1, as training accuracy does.
    """
    curve = np.asarray(curve, np.float64)
    k = len(curve)
    out = np.empty(epochs_total)
    out[:k] = curve
    if epochs_total == k:
        return out
    y = _logit(curve)
    t = np.arange(k, dtype=np.float64)
    slope = 0.0 if k < 2 else float(np.polyfit(t, y, 1)[0])
    level = y.mean() + slope * (np.arange(k, epochs_total) - t.mean())
    out[k:] = _sigmoid(level)
    return out


def _predict_ravg(traj: np.ndarray, epochs_total: int, samples: float) -> tuple[np.ndarray, np.ndarray]:
    """The `ravg` baseline: prompts stay at their current level; r_avg follows its own extrapolated trend."""
    k = traj.shape[1]
    level = traj[:, max(0, k - 2) :].mean(axis=1)  # (K,) mean of the last two epochs
    r_avg = extrapolate_curve(traj.mean(axis=0), epochs_total)  # (E,)
    sq = ((traj - r_avg[:k]) ** 2).sum(axis=1)
    future = r_avg[k:]  # (E - k,)
    sq += ((level[:, None] - future) ** 2 + (level * (1.0 - level) / samples)[:, None]).sum(axis=1)
    return _score(sq, r_avg), r_avg


@dataclass(frozen=True)
class TrendModel:
    """Per-prompt logit-linear trends, slopes shrunk toward the population (see `fit_trend`)."""

    level: np.ndarray  # (K,) fitted logit at the last epoch seen
    slope: np.ndarray  # (K,) posterior mean slope per epoch (logit units)
    slope_var: np.ndarray  # (K,) posterior variance of the slope
    level_var: np.ndarray  # (K,) sampling variance of `level`
    last_epoch: int  # index of the last epoch seen (k - 1)
    damping: float  # the slope of epoch last + h is damping^h times the slope (Holt's damped trend)

    def horizon(self, epochs: np.ndarray) -> np.ndarray:
        """Effective distance sum_{j=1..h} damping^j of each of `epochs` from the last epoch seen."""
        h = np.asarray(epochs, np.float64) - self.last_epoch
        if self.damping == 1.0:
            return h
        return self.damping * (1.0 - self.damping**h) / (1.0 - self.damping)

    def predict(self, epochs: np.ndarray) -> np.ndarray:
        """(K, len(epochs)) predicted probability of a correct sample in each of `epochs` (0-based, > k - 1)."""
        return _sigmoid(self.level[:, None] + self.slope[:, None] * self.horizon(epochs)[None, :])

    def p_select(
        self, traj: np.ndarray, epochs_total: int, threshold: float, samples: float, draws: int, seed: int
    ) -> np.ndarray:
        """Share of `draws` simulated completions of the run in which each prompt's final score >= threshold.

        Each draw takes every prompt's slope and level from their posterior, samples n = round(samples)
        answers per future epoch from the binomial and scores the completed run with LIM, r_avg included.
        """
        k = traj.shape[1]
        horizon = self.horizon(np.arange(k, epochs_total))[None, :]  # (1, E - k)
        n = max(1, int(round(samples)))
        rng = np.random.default_rng(seed)
        hits = np.zeros(len(traj))
        seen_mean = traj.mean(axis=0)  # (k,)
        sq_seen = ((traj - seen_mean) ** 2).sum(axis=1)  # (K,)
        for _ in range(max(1, draws)):
            slope = self.slope + rng.standard_normal(len(traj)) * np.sqrt(self.slope_var)
            level = self.level + rng.standard_normal(len(traj)) * np.sqrt(self.level_var)
            acc = rng.binomial(n, _sigmoid(level[:, None] + slope[:, None] * horizon)) / n  # (K, E - k)
            r_avg = np.concatenate([seen_mean, acc.mean(axis=0)])
            hits += _score(sq_seen + ((acc - r_avg[k:]) ** 2).sum(axis=1), r_avg) >= threshold
        return hits / max(1, draws)


def fit_trend(traj: np.ndarray, samples: float, recency: float = RECENCY, damping: float = DAMPING) -> TrendModel:
    """Empirical-Bayes logit-linear trends of trajectories (K, k) of accuracies over `samples` answers each.

    Each accuracy becomes an empirical logit log((c + 1/2) / (n - c + 1/2)) with sampling variance about
    1 / ((n + 1) p (1 - p)). Epoch t of k is weighted recency^(k - 1 - t) in a weighted least-squares line:
    learning curves bend (a prompt flat for five epochs that jumps in the sixth is rising now), so recent
    epochs say more about the next ones. A prompt's slope b_i has sampling variance v_i; the spread of the
    true slopes is tau^2 = var(b) - mean(v) (method of moments), and each slope is shrunk to
    w_i b_i + (1 - w_i) b_pop with w_i = tau^2 / (tau^2 + v_i): a prompt with few, extreme observations (0 of
    8 every epoch) mostly learns at the population's pace, one with a clear trend of its own keeps it.
    """
    traj = np.asarray(traj, np.float64)
    n_prompts, k = traj.shape
    p_hat = (traj * samples + 0.5) / (samples + 1.0)  # (K, k)
    y = np.log(p_hat / (1.0 - p_hat))  # (K, k) empirical logits
    var = 1.0 / ((samples + 1.0) * p_hat * (1.0 - p_hat))  # (K, k) their sampling variances
    t = np.arange(k, dtype=np.float64)
    u = recency ** (k - 1 - t)  # (k,) weights
    u /= u.sum()
    t_w = float(u @ t)
    y_w = y @ u  # (K,) weighted mean logit, at t_w
    y_w_var = var @ (u**2)
    if k < 2 or n_prompts == 0:
        zeros = np.zeros(n_prompts)
        return TrendModel(y_w, zeros, zeros, y_w_var, k - 1, damping)
    tc = t - t_w
    sxx = float(u @ tc**2)
    b = (y - y_w[:, None]) @ (u * tc) / sxx  # (K,) weighted least-squares slopes
    v = var @ (u * tc) ** 2 / sxx**2  # (K,) their sampling variances
    # Misfit beyond binomial noise (a noisy prompt, a bending curve) widens every posterior: the dispersion
    # phi = mean squared residual / binomial variance over k - 2 degrees of freedom, at least 1.
    resid = y - y_w[:, None] - b[:, None] * tc[None, :]  # (K, k)
    phi = max(1.0, float((resid**2 / var).sum() / (n_prompts * (k - 2)))) if k > 2 else 1.0
    v = v * phi
    b_pop = float(np.average(b, weights=1.0 / v))
    tau2 = max(float(np.var(b)) - float(v.mean()), 1e-6)
    w = tau2 / (tau2 + v)
    slope = w * b + (1.0 - w) * b_pop
    level = y_w + slope * (k - 1 - t_w)  # fitted logit at the last epoch seen
    level_var = phi * y_w_var + (k - 1 - t_w) ** 2 * w * v
    return TrendModel(level, slope, w * v, level_var, k - 1, damping)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out
