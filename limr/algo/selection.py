"""Selection strategies over scored prompts: LIM, RAND, LINEAR (the LIMR paper's baselines) and the cheap signals
the field uses instead (variance, learnability, pass-band). Pure numpy.

Every strategy returns sorted row indices into the arrays it was given; callers map them to prompt ids.

- `lim`: prompts whose LIM score is >= threshold (>=, as the released script), or the top k / top fraction
  by score (ties broken by input order).
- `rand`: a seeded uniform sample without replacement of k of n candidates. Sized like another selection
  (e.g. as many as `lim` picks at a threshold) so that RAND is the paper's equal-size random baseline.
- `linear`: samples that improve steadily across epochs. For a trajectory r^0..r^{E-1}, fit the least-
  squares line r^k ~ a + b * t_k with t_k = k / (E - 1) in [0, 1]; b is the accuracy gained over the run.
  The LINEAR score is b * R^2, where R^2 (coefficient of determination) measures how straight the climb is
  (R^2 = 0 for a flat trajectory). A prompt going steadily from 0 to 1 scores 1; a flat or noisy one about
  0; a declining one < 0. Select by score >= threshold, or top k / fraction.
- `variance`: the population variance (ddof 0) over epochs of a prompt's accuracy, the "historical variance" that
  1-shot RLVR (arXiv 2504.20571) ranks its training examples by. Flat prompts score 0; at most 0.25.
- `learnability`: the mean over epochs of r(1 - r), LILO's learnability (arXiv 2502.12272): the variance of one
  sample's reward, highest (0.25) for a prompt solved half the time, 0 for one always or never solved.
- `pass-band`: the mean accuracy p over the first K epochs (default 1: the starting model's pass rate), kept when
  lo <= p <= hi. ROLL's offline difficulty filter, and the "offline pass ratio" the LIMR authors suggest as a
  cheaper LIM. Its score is min(p - lo, hi - p) / ((hi - lo) / 2): 1 at the band's centre, 0 on its edges,
  negative outside, so `threshold 0` keeps exactly the band and top k / fraction keep the k prompts deepest in it.

The trajectory strategies score the same gap-filled accuracy matrix LIM scores (`ScoreResult.trajectories`: the
prompts LIM keeps, their gaps filled as the released script fills them), so every selector sees the same prompts.
Ties are broken by input order (a stable sort), so every selection is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Strategy = Literal["lim", "rand", "linear", "variance", "learnability", "pass-band"]
STRATEGIES: tuple[str, ...] = ("lim", "rand", "linear", "variance", "learnability", "pass-band")


class SelectionError(ValueError):
    """A selection request that cannot be satisfied (bad threshold, k, fraction...)."""


@dataclass(frozen=True)
class Criterion:
    """Exactly one of threshold / top_k / fraction."""

    threshold: float | None = None
    top_k: int | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.threshold, self.top_k, self.fraction)]
        if sum(given) != 1:
            raise SelectionError("give exactly one of --threshold, --top-k, --fraction")
        if self.threshold is not None:
            t = self.threshold
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
                raise SelectionError(f"--threshold must be a finite number, got {t!r}")
            if t > 1:
                raise SelectionError(f"--threshold {t} is above 1; scores are at most 1, nothing would be selected")
        if self.top_k is not None and (isinstance(self.top_k, bool) or self.top_k < 0):
            raise SelectionError(f"--top-k must be >= 0, got {self.top_k}")
        if self.fraction is not None and not (0 < self.fraction <= 1):
            raise SelectionError(f"--fraction must be in (0, 1], got {self.fraction}")

    def size(self, n: int) -> int | None:
        """k for top-k / fraction over n candidates (fraction rounds to nearest); None for a threshold."""
        if self.top_k is not None:
            return min(self.top_k, n)
        if self.fraction is not None:
            return min(n, int(math.floor(self.fraction * n + 0.5)))
        return None

    def describe(self) -> str:
        if self.threshold is not None:
            return f"score >= {self.threshold:g}"
        if self.top_k is not None:
            return f"top {self.top_k}"
        return f"top {self.fraction:g} fraction"


def _by_criterion(values: np.ndarray, crit: Criterion) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if crit.threshold is not None:
        return np.flatnonzero(values >= crit.threshold)
    k = crit.size(len(values))
    order = np.argsort(-values, kind="stable")  # descending, ties in input order
    return np.sort(order[:k])


def select_lim(scores: np.ndarray, crit: Criterion) -> np.ndarray:
    """Rows of `scores` (K,) selected by LIM."""
    return _by_criterion(scores, crit)


def select_rand(n: int, k: int, seed: int = 0) -> np.ndarray:
    """k of n rows uniformly at random without replacement (numpy PCG64 seeded by `seed`), sorted."""
    if not 0 <= k <= n:
        raise SelectionError(f"cannot sample {k} of {n} prompts")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=k, replace=False))


def linear_scores(traj: np.ndarray) -> np.ndarray:
    """b * R^2 of the least-squares line through each trajectory (see module docstring); (P, E) -> (P,)."""
    traj = np.asarray(traj, np.float64)
    p, e = traj.shape
    if e < 2:
        return np.zeros(p)
    t = np.arange(e) / (e - 1)  # (E,)
    tc = t - t.mean()
    yc = traj - traj.mean(axis=1, keepdims=True)  # (P, E)
    sxx = float((tc**2).sum())
    sxy = yc @ tc  # (P,)
    syy = (yc**2).sum(axis=1)  # (P,)
    slope = sxy / sxx
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(syy > 0, sxy**2 / (sxx * syy), 0.0)
    out: np.ndarray = slope * r2
    return out


def select_linear(traj: np.ndarray, crit: Criterion) -> np.ndarray:
    return _by_criterion(linear_scores(traj), crit)


def variance_scores(traj: np.ndarray) -> np.ndarray:
    """Population variance (ddof 0) over epochs of each prompt's accuracy; (P, E) -> (P,)."""
    out: np.ndarray = np.asarray(traj, np.float64).var(axis=1)
    return out


def learnability_scores(traj: np.ndarray) -> np.ndarray:
    """Mean over epochs of r(1 - r) (LILO's learnability); (P, E) -> (P,)."""
    traj = np.asarray(traj, np.float64)
    out: np.ndarray = (traj * (1.0 - traj)).mean(axis=1)
    return out


@dataclass(frozen=True)
class PassBand:
    """The pass-band filter's knobs: keep prompts whose mean accuracy over the first `epochs` epochs is in
    [lo, hi]. The defaults (0.1, 0.95) are the difficulty band ROLL's RLVR configs use; epochs 1 is the
    starting model's pass rate (the first epoch's samples come from the model before any update)."""

    lo: float = 0.1
    hi: float = 0.95
    epochs: int = 1

    def __post_init__(self) -> None:
        if not (0.0 <= self.lo <= self.hi <= 1.0):
            raise SelectionError(f"pass band must satisfy 0 <= lo <= hi <= 1, got [{self.lo}, {self.hi}]")
        if isinstance(self.epochs, bool) or self.epochs < 1:
            raise SelectionError(f"pass-band epochs must be >= 1, got {self.epochs}")

    def describe(self) -> str:
        return f"mean accuracy of the first {self.epochs} epoch(s) in [{self.lo:g}, {self.hi:g}]"


def pass_band_scores(traj: np.ndarray, band: PassBand) -> np.ndarray:
    """min(p - lo, hi - p) / half-width, p the mean of the first `band.epochs` epochs; (P, E) -> (P,)."""
    traj = np.asarray(traj, np.float64)
    p = traj[:, : band.epochs].mean(axis=1) if traj.shape[1] else np.zeros(len(traj))
    depth = np.minimum(p - band.lo, band.hi - p)  # >= 0 inside the band
    half = (band.hi - band.lo) / 2
    out: np.ndarray = depth / half if half > 0 else depth
    return out


def trajectory_scores(strategy: str, traj: np.ndarray, band: PassBand | None = None) -> np.ndarray:
    """The per-prompt score a trajectory strategy ranks by (linear, variance, learnability, pass-band)."""
    if strategy == "linear":
        return linear_scores(traj)
    if strategy == "variance":
        return variance_scores(traj)
    if strategy == "learnability":
        return learnability_scores(traj)
    if strategy == "pass-band":
        return pass_band_scores(traj, band or PassBand())
    raise SelectionError(f"{strategy!r} is not a trajectory strategy")


_DESCRIBE = {
    "linear": "linear (slope x R^2)",
    "variance": "variance of per-epoch accuracy",
    "learnability": "learnability, mean r(1 - r)",
}


@dataclass(frozen=True)
class Selection:
    rows: np.ndarray  # sorted indices into the candidates
    candidates: int
    description: str


def select(
    strategy: str,
    crit: Criterion,
    scores: np.ndarray | None = None,
    trajectories: np.ndarray | None = None,
    rand_candidates: int | None = None,
    seed: int = 0,
    band: PassBand | None = None,
) -> Selection:
    """Dispatch on strategy.

    `lim` needs `scores`; linear, variance, learnability and pass-band need `trajectories` (pass-band its
    `band`, default PassBand()); `rand` samples among `rand_candidates` rows, sized by top-k/fraction of those
    candidates or, for a threshold, as many as LIM selects at that threshold.
    """
    if strategy == "lim":
        if scores is None:
            raise SelectionError("strategy lim needs LIM scores")
        return Selection(select_lim(scores, crit), len(scores), f"lim, {crit.describe()}")
    if strategy in ("linear", "variance", "learnability", "pass-band"):
        if trajectories is None:
            raise SelectionError(
                f"strategy {strategy} needs accuracy trajectories (a run or dumps, not published scores)"
            )
        band = band or PassBand()
        what = f"pass-band ({band.describe()})" if strategy == "pass-band" else _DESCRIBE[strategy]
        rows = _by_criterion(trajectory_scores(strategy, trajectories, band), crit)
        return Selection(rows, len(trajectories), f"{what}, {crit.describe()}")
    if strategy == "rand":
        if rand_candidates is None:
            raise SelectionError("strategy rand needs the number of candidates")
        k = crit.size(rand_candidates)
        how = crit.describe()
        if k is None:
            if scores is None:
                raise SelectionError("rand with --threshold is sized like lim at that threshold: needs LIM scores")
            k = len(select_lim(scores, crit))
            how = f"as many as lim {crit.describe()}"
        return Selection(select_rand(rand_candidates, k, seed), rand_candidates, f"rand (seed {seed}), {how}: {k}")
    raise SelectionError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
