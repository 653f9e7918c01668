"""Early LIM: predictors of the final LIM score from the first k epochs, their evaluation and the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from limr.algo.early_eval import evaluate_run, final_selection, rankdata, replay_agreement, spearman
from limr.algo.early_learned import FinishedRun, fit_learned
from limr.algo.early_lim import (
    PREDICTORS,
    EarlyLimError,
    expected_scores,
    extrapolate_curve,
    fit_trend,
    predict_final,
)
from limr.algo.lim import lim_from_accuracy
from limr.algo.simulate import REGIMES, Regime, simulate_run


@pytest.fixture(scope="module")
def paper_run():
    return simulate_run(REGIMES["paper"], 500, 12, 8, seed=3)


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_every_predictor_is_lim_when_all_epochs_are_seen(paper_run, predictor):
    acc = paper_run.accuracy()
    final = lim_from_accuracy(acc)
    pred = predict_final(acc, 12, 12, 0.6, predictor=predictor)
    np.testing.assert_allclose(pred.scores, final.scores)
    np.testing.assert_array_equal(pred.selected, final.scores >= 0.6)
    assert pred.predicted_precision() == 1.0


def test_seen_is_lim_over_the_first_k_epochs(paper_run):
    acc = paper_run.accuracy()
    pred = predict_final(acc, 5, 12, 0.6, predictor="seen")
    np.testing.assert_allclose(pred.scores, lim_from_accuracy(acc, max_epochs=5).scores)
    assert pred.r_avg.shape == (5,) and pred.trajectories.shape[1] == 5


def test_rows_are_kept_as_lim_keeps_them_over_the_window():
    nan = np.nan
    acc = np.array([[0.0, nan, 0.5, 1.0], [nan, nan, 0.5, 1.0], [0.5, 0.5, nan, 1.0], [0.2, 0.4, 0.6, 0.8]])
    pred = predict_final(acc, 3, 4, 0.6, predictor="trend", samples=4)
    np.testing.assert_array_equal(pred.kept, [True, False, False, True])  # row 2: epoch 2 empty at k = 3
    assert len(pred.scores) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs_seen": 0}, "epochs seen must be in 1..12"),
        ({"epochs_seen": 13}, "epochs seen must be in 1..12"),
        ({"predictor": "oracle"}, "unknown predictor 'oracle'"),
        ({"samples": 0}, "samples per prompt and epoch must be > 0"),
    ],
)
def test_bad_requests_name_the_problem(paper_run, kwargs, message):
    args = {"epochs_seen": 6, "epochs_total": 12, "threshold": 0.6} | kwargs
    with pytest.raises(EarlyLimError, match=message):
        predict_final(paper_run.accuracy(), **args)


def test_expected_scores_with_known_future_and_no_noise_is_lim(paper_run):
    acc = paper_run.p_correct  # (P, E) no gaps
    scores, r_avg = expected_scores(acc[:, :4], acc[:, 4:], samples=1e15)
    final = lim_from_accuracy(acc)
    np.testing.assert_allclose(scores, final.scores, atol=1e-9)
    np.testing.assert_allclose(r_avg, final.r_avg)


def test_expected_scores_count_the_binomial_noise_to_come():
    traj = np.array([[0.5], [0.5]])
    future = np.array([[0.5], [0.5]])  # both exactly at r_avg: all deviation is sampling noise
    noisy, _ = expected_scores(traj, future, samples=4)
    exact, _ = expected_scores(traj, future, samples=1e15)
    np.testing.assert_allclose(exact, [1.0, 1.0])
    np.testing.assert_allclose(noisy, 1 - (0.25 / 4) / 0.5)  # sum (1 - r_avg)^2 = 2 * 0.25


def test_extrapolate_curve_continues_a_logit_linear_curve():
    t = np.arange(8)
    curve = 1 / (1 + np.exp(-(-2.0 + 0.5 * t)))
    np.testing.assert_allclose(extrapolate_curve(curve[:4], 8), curve, atol=1e-9)
    np.testing.assert_allclose(extrapolate_curve(np.array([0.3]), 3), [0.3, 0.3, 0.3])


def test_trend_slopes_are_shrunk_toward_the_population_by_their_uncertainty():
    rng = np.random.default_rng(0)
    k, n = 6, 8
    rising = np.clip(np.linspace(0.1, 0.9, k) + rng.normal(0, 0.05, (200, k)), 0, 1)
    traj = np.vstack([np.round(rising * n) / n, np.zeros((1, k))])  # 200 rising prompts + one never solved
    model = fit_trend(traj, n)
    flat = model.slope[-1]
    assert 0 < flat < np.median(model.slope[:-1])  # pulled up by the others, but not all the way
    assert model.slope_var[-1] > np.median(model.slope_var[:-1])
    # with many samples per epoch its own (zero) slope is well measured and shrinking stops
    exact = 1 / (1 + np.exp(-(-2 + rng.uniform(0.5, 1.0, (200, 1)) * np.arange(k))))  # no noise beyond binomial
    big = fit_trend(np.vstack([exact, np.full((1, k), 0.02)]), 1e6)
    assert abs(big.slope[-1]) < 0.05 * np.median(big.slope[:-1])


def test_trend_probability_is_calibrated_on_a_simulated_run(paper_run):
    acc = paper_run.accuracy()
    _, final_sel = final_selection(acc, 0.6)
    pred = predict_final(acc, 6, 12, 0.6, predictor="trend", draws=200)
    assert ((pred.p_select >= 0) & (pred.p_select <= 1)).all()
    realised = final_sel[pred.kept][pred.selected].mean()
    assert abs(pred.predicted_precision() - realised) < 0.1
    # prompts it is sure about are right
    sure = pred.p_select > 0.95
    assert final_sel[pred.kept][sure].mean() > 0.9


def test_trend_beats_seen_early_where_r_avg_crosses_one_half(paper_run):
    """The paper's regime: r_avg passes 0.5 later in the run, so never-solved prompts drop out at the end;
    LIM over the first epochs still selects them, the trend foresees the drop."""
    rows = evaluate_run(paper_run.correct, paper_run.total, 0.6, ["seen", "trend"], ks=[3])
    f1 = {r.predictor: r.f1 for r in rows}
    assert f1["trend"] > f1["seen"] + 0.03


def test_evaluation_at_the_last_epoch_is_perfect_and_saves_the_unseen_share(paper_run):
    rows = evaluate_run(paper_run.correct, paper_run.total, 0.6, ["seen"], ks=[12, 6])
    last, half = rows
    assert (last.precision, last.recall, last.f1, last.rollouts_saved) == (1.0, 1.0, 1.0, 0.0)
    assert last.spearman == pytest.approx(1.0)
    assert half.rollouts_saved == pytest.approx(0.5)  # no gaps, equal samples per epoch
    assert half.selected_final == last.selected_final
    assert set(half.to_dict()) >= {"precision", "recall", "f1", "spearman", "brier", "rollouts_saved"}


def test_rankdata_and_spearman():
    np.testing.assert_allclose(rankdata(np.array([3.0, 1.0, 2.0, 1.0])), [4, 1.5, 3, 1.5])
    x = np.array([0.1, 0.5, 0.2, 0.9])
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman(x[:1], x[:1]))


def test_simulator_profiles_and_regimes():
    run = simulate_run(REGIMES["gappy"], 2000, 10, 8, seed=1)
    assert run.correct.shape == run.total.shape == (2000, 10)
    assert (run.correct <= run.total).all()
    assert 0.03 < (run.total == 0).mean() < 0.07
    acc = run.accuracy()
    assert np.nanmean(acc[run.profiles == "impossible"]) < 0.05
    assert np.nanmean(acc[run.profiles == "easy"]) > 0.85
    learn = acc[run.profiles == "learnable"]
    assert np.nanmean(learn[:, -1]) > np.nanmean(learn[:, 0]) + 0.4
    assert lim_from_accuracy(simulate_run(REGIMES["paper"], 1000, 10, 8).accuracy()).r_avg[-1] > 0.6
    assert lim_from_accuracy(simulate_run(REGIMES["slow"], 1000, 10, 8).accuracy()).r_avg[-1] < 0.5
    again = simulate_run(REGIMES["gappy"], 2000, 10, 8, seed=1)
    np.testing.assert_array_equal(run.correct, again.correct)
    with pytest.raises(ValueError, match="mix must be 4 non-negative shares"):
        simulate_run(Regime(mix=(0.5, 0.5, 0.5, 0.0)), 10, 4, 8)


def test_learned_predictor_fit_on_other_runs():
    train = [FinishedRun(simulate_run(REGIMES[r], 300, 10, 8, seed=5).accuracy(), 8.0) for r in ("paper", "late")]
    model = fit_learned(train, 0.6)
    assert model.examples > 1000
    test = simulate_run(REGIMES["paper"], 400, 10, 8, seed=9)
    rows = evaluate_run(test.correct, test.total, 0.6, {"learned": lambda acc, k: model.predict(acc, k, 10, 8.0)})
    half = next(r for r in rows if r.epochs_seen == 5)
    assert half.predictor == "learned" and half.f1 > 0.8
    assert half.brier < 0.15
    with pytest.raises(EarlyLimError, match="needs finished runs with more prompts"):
        fit_learned([FinishedRun(test.accuracy()[:3], 8.0)], 0.6)


def test_replay_agreement_measures_how_noisy_the_final_selection_is():
    """With many samples per epoch a replay reselects the same prompts; with 8 it disagrees more, less so as the
    replayed tail gets shorter; the last epoch seen must leave something to replay."""
    regime = REGIMES["paper"]
    precise = simulate_run(regime, 300, 8, 2000, seed=3)
    noisy = simulate_run(regime, 300, 8, 8, seed=3)
    assert replay_agreement(precise.correct, precise.total, 4, 0.6, draws=10) > 0.93
    early, late = (replay_agreement(noisy.correct, noisy.total, k, 0.6, draws=20) for k in (2, 7))
    assert 0.6 < early < late < 1.0
    assert replay_agreement(noisy.correct, noisy.total, 2, 0.6, draws=20, seed=5) == pytest.approx(
        replay_agreement(noisy.correct, noisy.total, 2, 0.6, draws=20, seed=5)
    )
    with pytest.raises(ValueError, match="1..7"):
        replay_agreement(noisy.correct, noisy.total, 8, 0.6)
