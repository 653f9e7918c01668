"""Paired bootstrap over held-out problems and seeds: intervals for each arm's final accuracy and for differences
between arms. Pure numpy.

Two sources of noise sit in a study's final accuracy: which held-out problems were drawn (with 388 problems one
accuracy carries about 2.3 points of standard error) and which RL seed ran. Arms are evaluated on the *same*
problems, and arms that share a seed share its rollout-service and sampling stream, so a difference between two
arms is far less noisy than either accuracy: a problem that every arm gets wrong adds nothing to it. The paired
bootstrap keeps that pairing: each replicate draws one multiset of problems (shared by every arm) and one
multiset of seed positions (shared by the two arms of a difference), and recomputes every mean on them.

- `arm_interval`: an arm's mean accuracy over its seeds and the problems, with the 2.5 / 97.5 percentiles of its
  replicates (the percentile bootstrap).
- `difference`: arm A minus arm B on the seeds both ran (paired), or, when they share none, with independent
  seed draws; the problems are paired either way. A paired difference also says where its interval's width
  comes from (`noise`): the half-width with only the problems redrawn, with only the seeds, and the difference
  seed by seed.

`from_accuracies` is the fallback for studies that recorded only each run's accuracy, not which problems it
solved (the study of 2026-11-30): problems are then redrawn from the binomial of each run's accuracy,
independently per arm, which ignores the pairing and overstates the spread of differences. It is labelled so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PAIRED = "paired bootstrap over held-out problems and seeds"
UNPAIRED = "bootstrap over seeds with binomial problem noise, unpaired (no per-problem records)"


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95% percentile-bootstrap interval."""

    mean: float
    lo: float
    hi: float

    def separates_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _interval(point: float, reps: np.ndarray) -> Interval:
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return Interval(float(point), float(lo), float(hi))


class PairedBootstrap:
    """Replicates of every arm's final accuracy, built once and reused for arm intervals and differences.

    `correct[arm]` is (S, N): seed x held-out problem, 1 where the run's final greedy answer was right; every
    arm's columns are the same problems in the same order. `seeds[arm]` names its rows.
    """

    def __init__(
        self, correct: dict[str, np.ndarray], seeds: dict[str, list[int]], replicates: int = 2000, seed: int = 0
    ) -> None:
        n = {c.shape[1] for c in correct.values()}
        if len(n) != 1:
            raise ValueError(f"arms were evaluated on different numbers of problems: {sorted(n)}")
        self.n = n.pop()
        self.correct = {a: np.asarray(c, np.float64) for a, c in correct.items()}
        self.seeds = {a: list(s) for a, s in seeds.items()}
        for a, c in self.correct.items():
            if c.shape[0] != len(self.seeds[a]) or c.shape[0] == 0:
                raise ValueError(f"arm {a}: {c.shape[0]} rows of results for seeds {self.seeds[a]}")
        self.b = replicates
        rng = np.random.default_rng(seed)
        # problem weights: how often each problem is drawn in each replicate (a multinomial of N draws)
        w = rng.multinomial(self.n, np.full(self.n, 1.0 / self.n), size=replicates).T  # (N, B)
        # per arm, per seed, per replicate: accuracy on the redrawn problems
        self.per_seed = {a: c @ w / self.n for a, c in self.correct.items()}  # (S, B)
        self._rng = rng
        self._seed_draws: dict[int, np.ndarray] = {}

    def _draw(self, s: int) -> np.ndarray:
        """(B, s) seed positions drawn with replacement; the same draw for every arm with s seeds, so arms
        with the same seeds are paired on them."""
        if s not in self._seed_draws:
            self._seed_draws[s] = self._rng.integers(0, s, size=(self.b, s))
        return self._seed_draws[s]

    def _reps(self, arm: str, rows: list[int], draw: np.ndarray) -> np.ndarray:
        m = self.per_seed[arm][rows]  # (s, B)
        return m[draw, np.arange(self.b)[:, None]].mean(axis=1)  # (B,)

    def arm_interval(self, arm: str) -> Interval:
        rows = list(range(len(self.seeds[arm])))
        return _interval(float(self.correct[arm].mean()), self._reps(arm, rows, self._draw(len(rows))))

    def difference(self, a: str, b: str) -> dict[str, Any]:
        """a - b: paired on the seeds both ran when there are any, else independent seed draws."""
        common = [s for s in self.seeds[a] if s in self.seeds[b]]
        if common:
            ra = [self.seeds[a].index(s) for s in common]
            rb = [self.seeds[b].index(s) for s in common]
            draw = self._draw(len(common))
            reps = self._reps(a, ra, draw) - self._reps(b, rb, draw)
            point = float(self.correct[a][ra].mean() - self.correct[b][rb].mean())
            how = f"paired on seeds {common}"
        else:
            ia, ib = range(len(self.seeds[a])), range(len(self.seeds[b]))
            reps = self._reps(a, list(ia), self._draw(len(ia))) - self._reps(
                b, list(ib), self._rng.integers(0, len(ib), size=(self.b, len(ib)))
            )
            point = float(self.correct[a].mean() - self.correct[b].mean())
            how = "no common seeds: seeds drawn independently, problems paired"
        iv = _interval(point, reps)
        out: dict[str, Any] = {**iv.to_dict(), "separated": iv.separates_zero(), "pairing": how}
        if common:
            out["noise"] = self._noise_sources(a, b, ra, rb) | {"paired_seeds": common}
        return out

    def _noise_sources(self, a: str, b: str, ra: list[int], rb: list[int]) -> dict[str, Any]:
        """Where a paired difference's interval width comes from: its half-width with only the held-out problems
        redrawn (every common seed kept once), and with only the seeds redrawn (the problems kept), in accuracy
        units; and the difference seed by seed (`difference` adds which seeds those are, as `paired_seeds`).

        Why: the two call for different remedies. Problem noise shrinks with a larger held-out set (as 1/sqrt(N));
        seed noise only with more seeds. A study whose interval still straddles 0 should widen whichever
        dominates, and this says which.
        """
        problems = self.per_seed[a][ra].mean(axis=0) - self.per_seed[b][rb].mean(axis=0)  # (B,)
        per_seed = self.correct[a][ra].mean(axis=1) - self.correct[b][rb].mean(axis=1)  # (s,)
        seeds = per_seed[self._draw(len(ra))].mean(axis=1)  # (B,)

        def half(reps: np.ndarray) -> float:
            lo, hi = np.percentile(reps, [2.5, 97.5])
            return float(hi - lo) / 2

        return {"problems": half(problems), "seeds": half(seeds), "per_seed": [float(x) for x in per_seed]}


class AccuracyBootstrap(PairedBootstrap):
    """The fallback when only each run's final accuracy is known: a run's accuracy on a redrawn set of N problems
    is Binomial(N, its accuracy) / N, drawn independently per run and replicate (no problem pairing)."""

    def __init__(
        self, accuracy: dict[str, list[float]], seeds: dict[str, list[int]], n: int, replicates: int = 2000,
        seed: int = 0,
    ) -> None:  # fmt: skip
        self.n, self.b = n, replicates
        self.seeds = {a: list(s) for a, s in seeds.items()}
        rng = np.random.default_rng(seed)
        self.correct = {a: np.asarray(acc, np.float64)[:, None] for a, acc in accuracy.items()}  # (S, 1): means
        self.per_seed = {
            a: rng.binomial(n, np.clip(np.asarray(acc, np.float64), 0, 1)[:, None], size=(len(acc), replicates)) / n
            for a, acc in accuracy.items()
        }
        self._rng = rng
        self._seed_draws = {}


def first_reach(steps: list[int], values: list[float], target: float) -> int | None:
    """Index of the first evaluation after step 0 whose value is at least `target` (None: never)."""
    for i, (s, v) in enumerate(zip(steps, values, strict=True)):
        if s > 0 and v >= target - 1e-12:
            return i
    return None
