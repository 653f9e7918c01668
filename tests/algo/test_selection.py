"""Selection strategies: LIM threshold/top-k/fraction, seeded RAND, LINEAR (slope x R^2), argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from limr.algo.selection import Criterion, SelectionError, linear_scores, select, select_lim, select_rand


def test_lim_threshold_is_inclusive_and_topk_breaks_ties_by_order() -> None:
    scores = np.array([0.6, 0.59999, 0.9, 0.6, -1.0])
    assert select_lim(scores, Criterion(threshold=0.6)).tolist() == [0, 2, 3]
    assert select_lim(scores, Criterion(top_k=2)).tolist() == [0, 2]  # 0.6 at index 0 beats the tie at 3
    assert select_lim(scores, Criterion(top_k=99)).tolist() == [0, 1, 2, 3, 4]
    assert select_lim(scores, Criterion(fraction=0.5)).tolist() == [0, 2, 3]  # round(2.5) -> 3 (half up)
    assert select_lim(scores, Criterion(top_k=0)).tolist() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"threshold": 0.1, "top_k": 3}, "exactly one"),
        ({"threshold": 1.01}, "above 1"),
        ({"threshold": float("nan")}, "finite number"),
        ({"threshold": float("inf")}, "finite number"),
        ({"top_k": -1}, "--top-k must be >= 0"),
        ({"fraction": 0.0}, r"--fraction must be in \(0, 1\]"),
        ({"fraction": 1.2}, r"--fraction must be in \(0, 1\]"),
    ],
)
def test_bad_criteria(kwargs: dict, message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        Criterion(**kwargs)


def test_rand_is_seeded_uniform_and_sized() -> None:
    a, b = select_rand(1000, 100, seed=7), select_rand(1000, 100, seed=7)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 100 and a.tolist() == sorted(a.tolist())
    assert select_rand(1000, 100, seed=8).tolist() != a.tolist()
    # Uniform: over many seeds every candidate is drawn about k/n of the time.
    hits = np.zeros(50)
    for seed in range(2000):
        hits[select_rand(50, 10, seed)] += 1
    assert np.abs(hits / 2000 - 0.2).max() < 0.05
    with pytest.raises(SelectionError, match="cannot sample 11 of 10"):
        select_rand(10, 11)
    # Dispatcher: rand with a threshold takes LIM's selection size.
    scores = np.array([0.9, 0.1, 0.7, 0.65])
    sel = select("rand", Criterion(threshold=0.65), scores=scores, rand_candidates=40, seed=1)
    assert len(sel.rows) == 3 and sel.candidates == 40


def test_linear_scores_prefer_steady_improvement() -> None:
    traj = np.array(
        [
            [0.0, 0.25, 0.5, 0.75, 1.0],  # perfect steady climb: slope 1, R^2 1
            [0.5, 0.5, 0.5, 0.5, 0.5],  # flat: 0
            [1.0, 0.75, 0.5, 0.25, 0.0],  # steady decline: -1
            [0.0, 1.0, 0.0, 1.0, 1.0],  # erratic with a weak upward trend
            [0.2, 0.3, 0.4, 0.5, 0.6],  # steady but small gain: 0.4
        ]
    )
    s = linear_scores(traj)
    np.testing.assert_allclose(s[[0, 1, 2, 4]], [1.0, 0.0, -1.0, 0.4], atol=1e-12)
    assert 0 < s[3] < 0.4
    assert select("linear", Criterion(top_k=2), trajectories=traj).rows.tolist() == [0, 4]
    assert linear_scores(np.ones((3, 1))).tolist() == [0.0, 0.0, 0.0]


def test_dispatch_errors() -> None:
    with pytest.raises(SelectionError, match="unknown strategy"):
        select("best", Criterion(top_k=1), scores=np.zeros(2))
    with pytest.raises(SelectionError, match="linear needs accuracy trajectories"):
        select("linear", Criterion(top_k=1), scores=np.zeros(2))


# The field's cheap selectors, against values worked by hand on three epochs.
TRAJ = np.array(
    [
        [0.0, 0.5, 1.0],  # mean 0.5; variance (0.25 + 0 + 0.25) / 3 = 1/6; r(1-r): 0, 0.25, 0 -> 1/12
        [0.5, 0.5, 0.5],  # flat at a half: variance 0; r(1-r) 0.25 each -> 0.25
        [1.0, 1.0, 1.0],  # always solved: 0 and 0
        [0.25, 0.75, 0.25],  # variance (1/16 + 1/16 + ... ): mean 5/12, deviations -1/6, 1/3, -1/6 -> 1/18
        [0.0, 0.0, 0.0],  # never solved: 0 and 0
    ]
)


def test_variance_and_learnability_by_hand() -> None:
    from limr.algo.selection import learnability_scores, variance_scores

    np.testing.assert_allclose(variance_scores(TRAJ), [1 / 6, 0.0, 0.0, 1 / 18, 0.0], atol=1e-15)
    # r(1 - r): row 3 is 3/16, 3/16, 3/16 -> 3/16
    np.testing.assert_allclose(learnability_scores(TRAJ), [1 / 12, 0.25, 0.0, 3 / 16, 0.0], atol=1e-15)
    assert select("variance", Criterion(top_k=2), trajectories=TRAJ).rows.tolist() == [0, 3]
    assert select("learnability", Criterion(top_k=2), trajectories=TRAJ).rows.tolist() == [1, 3]
    assert select("learnability", Criterion(threshold=0.1), trajectories=TRAJ).rows.tolist() == [1, 3]
    # ties (rows 1, 2, 4 all 0 variance) keep input order: the third pick is row 1, then 2, then 4
    assert select("variance", Criterion(top_k=3), trajectories=TRAJ).rows.tolist() == [0, 1, 3]
    assert select("variance", Criterion(top_k=4), trajectories=TRAJ).rows.tolist() == [0, 1, 2, 3]
    assert select("variance", Criterion(fraction=0.4), trajectories=TRAJ).rows.tolist() == [0, 3]


def test_pass_band_by_hand() -> None:
    from limr.algo.selection import PassBand, pass_band_scores

    # first epoch only (the starting model): p = 0, 0.5, 1, 0.25, 0; band [0.1, 0.9], half-width 0.4
    band = PassBand(0.1, 0.9, 1)
    np.testing.assert_allclose(pass_band_scores(TRAJ, band), [-0.25, 1.0, -0.25, 0.375, -0.25], atol=1e-12)
    assert select("pass-band", Criterion(threshold=0.0), trajectories=TRAJ, band=band).rows.tolist() == [1, 3]
    assert select("pass-band", Criterion(top_k=1), trajectories=TRAJ, band=band).rows.tolist() == [1]
    # over two epochs: p = 0.25, 0.5, 1, 0.5, 0 -> rows 0, 1, 3 in the band, 1 and 3 tie at its centre
    two = PassBand(0.1, 0.9, 2)
    np.testing.assert_allclose(pass_band_scores(TRAJ, two), [0.375, 1.0, -0.25, 1.0, -0.25], atol=1e-12)
    assert select("pass-band", Criterion(threshold=0.0), trajectories=TRAJ, band=two).rows.tolist() == [0, 1, 3]
    assert select("pass-band", Criterion(top_k=1), trajectories=TRAJ, band=two).rows.tolist() == [1]  # tie: order
    # the edges are in the band (>=); a zero-width band keeps exactly its value
    edge = PassBand(0.5, 0.5, 1)
    assert select("pass-band", Criterion(threshold=0.0), trajectories=TRAJ, band=edge).rows.tolist() == [1]
    # more epochs asked than exist: the epochs there are
    assert pass_band_scores(TRAJ, PassBand(0.0, 1.0, 9)).shape == (5,)
    sel = select("pass-band", Criterion(threshold=0.0), trajectories=TRAJ)  # default band [0.1, 0.95]
    assert sel.rows.tolist() == [1, 3] and "[0.1, 0.95]" in sel.description


@pytest.mark.parametrize(
    ("lo", "hi", "epochs", "message"),
    [(0.5, 0.4, 1, "lo <= hi"), (-0.1, 0.4, 1, "lo <= hi"), (0.1, 1.5, 1, "hi <= 1"), (0.1, 0.9, 0, ">= 1")],
)
def test_bad_pass_band(lo: float, hi: float, epochs: int, message: str) -> None:
    from limr.algo.selection import PassBand

    with pytest.raises(SelectionError, match=message):
        PassBand(lo, hi, epochs)


@pytest.mark.parametrize("strategy", ["variance", "learnability", "pass-band"])
def test_trajectory_strategies_need_trajectories(strategy: str) -> None:
    with pytest.raises(SelectionError, match=f"{strategy} needs accuracy trajectories"):
        select(strategy, Criterion(top_k=1), scores=np.zeros(2))
