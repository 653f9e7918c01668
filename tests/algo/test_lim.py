"""LIM math: gap filling with the released script's semantics, the score formula, truncation order."""

from __future__ import annotations

import numpy as np
import pytest

from limr.algo.lim import fill_missing_epochs, lim_from_accuracy, lim_scores

N = np.nan


def _released_fill(seq: list[float]) -> list[float]:
    """The released script's loop, restated with -1 for missing."""
    s = [-1.0 if np.isnan(x) else x for x in seq]
    for i in range(len(s) - 1):
        if s[i] == -1 and s[i + 1] != -1:
            s[i] = s[i + 1]
    return [np.nan if x == -1 else x for x in s]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([0.5, N, 1.0], [0.5, 1.0, 1.0]),  # single gap takes the next epoch
        ([N, N, 0.25, 1.0], [N, 0.25, 0.25, 1.0]),  # double gap: only the second is filled
        ([0.0, 0.5, N], [0.0, 0.5, N]),  # last epoch never filled
        ([N, 0.5, N, 0.75], [0.5, 0.5, 0.75, 0.75]),
        ([N, N, N], [N, N, N]),
        ([0.3], [0.3]),
    ],
)
def test_fill_cases(row: list[float], expected: list[float]) -> None:
    got = fill_missing_epochs(np.array([row]))[0]
    np.testing.assert_array_equal(got, np.array(expected))


def test_fill_matches_released_loop_on_random_gaps() -> None:
    rng = np.random.default_rng(1)
    acc = rng.random((400, 9))
    acc[rng.random(acc.shape) < 0.35] = np.nan
    got = fill_missing_epochs(acc)
    want = np.array([_released_fill(list(r)) for r in acc])
    np.testing.assert_array_equal(got, want)
    assert np.isnan(acc).sum() > np.isnan(got).sum()  # it did fill something, and did not modify the input
    assert not np.shares_memory(got, acc)


def test_scores_formula() -> None:
    traj = np.array([[0.0, 0.5, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.2, 0.4, 0.8]])
    scores, r_avg = lim_scores(traj)
    r = traj.mean(axis=0)
    np.testing.assert_allclose(r_avg, r)
    for i in range(4):
        want = 1 - sum((traj[i, k] - r[k]) ** 2 for k in range(3)) / sum((1 - r[k]) ** 2 for k in range(3))
        assert scores[i] == pytest.approx(want, abs=1e-12)
    # A prompt identical to the average scores exactly 1.
    s, _ = lim_scores(np.vstack([traj, r]))
    assert s[-1] == pytest.approx(1.0)


def test_all_correct_denominator_zero_scores_one() -> None:
    scores, r_avg = lim_scores(np.ones((3, 4)))
    np.testing.assert_array_equal(scores, np.ones(3))
    np.testing.assert_array_equal(r_avg, np.ones(4))


def test_nan_and_shape_errors() -> None:
    with pytest.raises(ValueError, match="NaN"):
        lim_scores(np.array([[0.1, N]]))
    with pytest.raises(ValueError, match="shape"):
        fill_missing_epochs(np.zeros(3))
    with pytest.raises(ValueError, match="max_epochs"):
        lim_from_accuracy(np.zeros((2, 2)), max_epochs=0)


def test_truncate_before_fill() -> None:
    # Epoch 2 missing, epoch 3 present: with max_epochs=3 the gap is in the last scored epoch -> left out.
    acc = np.array([[0.1, 0.2, N, 0.9], [0.0, 0.5, 0.5, 0.5]])
    res3 = lim_from_accuracy(acc, max_epochs=3)
    assert res3.kept.tolist() == [False, True] and res3.epochs == 3
    res4 = lim_from_accuracy(acc)
    assert res4.kept.tolist() == [True, True]
    np.testing.assert_array_equal(res4.trajectories[0], [0.1, 0.2, 0.9, 0.9])
    # r_avg is the mean over kept prompts only.
    np.testing.assert_array_equal(res3.r_avg, [0.0, 0.5, 0.5])
