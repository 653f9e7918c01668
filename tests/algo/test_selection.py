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
