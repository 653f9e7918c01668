"""Simulated finished runs with known prompt profiles, as (P, E) counts: a test bed for early LIM.

Each prompt has a probability of a correct sample per epoch set by its profile, and each epoch draws
`samples` answers from it:

- `easy`: already solved (p in [0.85, 1], creeping up);
- `impossible`: out of reach for the whole run (p in [0, 0.03]);
- `learnable`: a logistic rise from a low base to a high ceiling, with its own onset (a fraction of the run)
  and rate, drawn from the regime's ranges;
- `noisy`: stuck in the middle (p in [0.25, 0.75]) with epoch-to-epoch jitter of 0.15.

A `Regime` fixes the mix and the onset range; `REGIMES` holds the ones the early-LIM benchmark uses. The
model's average accuracy r_avg is whatever the mix makes it: it rises above 0.5 in `paper` as in the LIMR
run, stays below 0.5 in `slow` as in `limr demo`'s trained run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from limr.algo.lim import accuracy_from_counts

PROFILES: tuple[str, ...] = ("easy", "impossible", "learnable", "noisy")


@dataclass(frozen=True)
class Regime:
    """A kind of run: shares of the profiles and when learnable prompts start to learn."""

    mix: tuple[float, float, float, float]  # shares of PROFILES, summing to 1
    onset: tuple[float, float] = (0.0, 0.7)  # onset range as a fraction of the run
    rate: tuple[float, float] = (6.0, 20.0)  # logistic rate per run length
    gap_rate: float = 0.0  # share of (prompt, epoch) cells without samples


REGIMES: dict[str, Regime] = {
    "paper": Regime(mix=(0.2, 0.15, 0.55, 0.1)),
    "late": Regime(mix=(0.2, 0.15, 0.55, 0.1), onset=(0.3, 1.0)),
    "slow": Regime(mix=(0.1, 0.4, 0.35, 0.15), onset=(0.2, 1.2), rate=(3.0, 8.0)),
    "gappy": Regime(mix=(0.2, 0.15, 0.55, 0.1), gap_rate=0.05),
}


@dataclass(frozen=True)
class SimulatedRun:
    correct: np.ndarray  # (P, E) int correct samples
    total: np.ndarray  # (P, E) int samples (0 where the prompt skipped that epoch)
    p_correct: np.ndarray  # (P, E) the true probabilities
    profiles: np.ndarray  # (P,) profile names

    def accuracy(self) -> np.ndarray:
        """(P, E) share correct, NaN where there were no samples (as `EpochCounts.accuracy`)."""
        return accuracy_from_counts(self.correct, self.total)


def simulate_run(regime: Regime, num_prompts: int, epochs: int, samples: int, seed: int = 0) -> SimulatedRun:
    """Draw one run of `regime`: profiles, probabilities per epoch, then binomial counts."""
    if num_prompts < 1 or epochs < 2 or samples < 1:
        raise ValueError("need >= 1 prompt, >= 2 epochs and >= 1 sample")
    mix = np.asarray(regime.mix, np.float64)
    if mix.shape != (len(PROFILES),) or (mix < 0).any() or abs(mix.sum() - 1.0) > 1e-9:
        raise ValueError(f"mix must be {len(PROFILES)} non-negative shares summing to 1, got {regime.mix}")
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(PROFILES), size=num_prompts, p=mix)  # (P,)
    t = np.arange(epochs) / (epochs - 1)  # (E,) run fraction
    p = np.empty((num_prompts, epochs))
    for i, kind in enumerate(kinds):
        p[i] = _curve(PROFILES[kind], t, regime, rng)
    total = np.full((num_prompts, epochs), samples, np.int64)
    total[rng.random((num_prompts, epochs)) < regime.gap_rate] = 0
    correct = rng.binomial(total, p)
    return SimulatedRun(correct, total, p, np.asarray(PROFILES)[kinds])


def _curve(profile: str, t: np.ndarray, regime: Regime, rng: np.random.Generator) -> np.ndarray:
    if profile == "easy":
        start = rng.uniform(0.85, 0.97)
        return np.minimum(1.0, start + (1.0 - start) * t * rng.uniform(0.0, 1.0))
    if profile == "impossible":
        return np.full(len(t), rng.uniform(0.0, 0.03))
    if profile == "learnable":
        base, ceil = rng.uniform(0.0, 0.15), rng.uniform(0.7, 1.0)
        onset, rate = rng.uniform(*regime.onset), rng.uniform(*regime.rate)
        return base + (ceil - base) / (1.0 + np.exp(-rate * (t - onset)))
    mid = rng.uniform(0.25, 0.75)  # noisy
    return np.clip(mid + rng.normal(0.0, 0.15, len(t)), 0.0, 1.0)
