"""select_prompts: the one mapping of selected rows to prompt ids that `limr select` and publishing share."""

from __future__ import annotations

import numpy as np

from limr.algo.selection import Criterion
from limr.curation.selecting import select_prompts
from limr.scoring import ScoreResult


def _result() -> ScoreResult:
    ids = ["a", "b", "c", "d"]
    traj = np.array([[0.0, 1.0], [0.5, 0.5], [0.0, 0.5], [1.0, 0.0]])  # (K, E)
    return ScoreResult(ids, np.array([0.9, 0.1, 0.7, 0.2]), traj, traj.mean(axis=0), epochs=2)


def test_lim_picks_scored_ids_whatever_the_pool() -> None:
    sel, ids = select_prompts(_result(), "lim", Criterion(threshold=0.5), pool_ids=["x", "a", "c", "y"])
    assert ids == ["a", "c"] and sel.candidates == 4


def test_rand_samples_the_pool_when_given_else_the_scored_prompts() -> None:
    pool = [f"p{i}" for i in range(50)]
    _, from_pool = select_prompts(_result(), "rand", Criterion(top_k=3), seed=1, pool_ids=pool)
    assert len(from_pool) == 3 and set(from_pool) <= set(pool)
    assert from_pool == [pool[i] for i in sorted(np.random.default_rng(1).choice(50, 3, replace=False))]
    _, scored = select_prompts(_result(), "rand", Criterion(top_k=3), seed=1)
    assert len(scored) == 3 and set(scored) <= set("abcd")


def test_rand_with_a_threshold_is_sized_like_lim() -> None:
    _, ids = select_prompts(_result(), "rand", Criterion(threshold=0.5), seed=0, pool_ids=[str(i) for i in range(9)])
    assert len(ids) == 2


def test_linear_ranks_steady_climbers() -> None:
    _, ids = select_prompts(_result(), "linear", Criterion(top_k=1))
    assert ids == ["a"]


def test_field_selectors_rank_the_same_trajectories() -> None:
    from limr.algo.selection import PassBand

    # a: 0 -> 1 (variance 0.25, learnability 0), b: flat 0.5 (0, 0.25), c: 0 -> 0.5, d: 1 -> 0
    assert select_prompts(_result(), "variance", Criterion(top_k=2))[1] == ["a", "d"]
    assert select_prompts(_result(), "learnability", Criterion(top_k=1))[1] == ["b"]
    band = PassBand(0.25, 0.75, 1)  # first epoch: 0, 0.5, 0, 1 -> only b in the band
    assert select_prompts(_result(), "pass-band", Criterion(threshold=0.0), band=band)[1] == ["b"]
