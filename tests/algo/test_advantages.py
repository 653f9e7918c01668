"""GAE, KL estimators, reward shaping, group advantages and whitening against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from limr.algo.advantages import (
    AdaptiveKLController,
    RunningMoments,
    gae,
    group_advantages,
    grpo_advantages,
    kl_estimate,
    masked_mean,
    masked_sums,
    masked_whiten,
    reward_to_go,
    token_level_rewards,
)


def test_kl_estimators_by_hand():
    logp = torch.tensor([[math.log(0.5), math.log(0.2)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.4)]])
    # log r = ref - logp = [log 0.5, log 2]
    k1 = kl_estimate(logp, ref, "k1")
    k2 = kl_estimate(logp, ref, "k2")
    k3 = kl_estimate(logp, ref, "k3")
    torch.testing.assert_close(k1, torch.tensor([[math.log(2), -math.log(2)]]))
    torch.testing.assert_close(k2, torch.tensor([[0.5 * math.log(2) ** 2, 0.5 * math.log(2) ** 2]]))
    # k3 = (r - 1) - log r: r = 0.5 -> -0.5 + log 2; r = 2 -> 1 - log 2
    torch.testing.assert_close(k3, torch.tensor([[-0.5 + math.log(2), 1 - math.log(2)]]))
    assert (k3 >= 0).all()
    with pytest.raises(ValueError, match="k4"):
        kl_estimate(logp, ref, "k4")  # type: ignore[arg-type]


def test_k1_and_k3_are_unbiased_estimates_of_kl():
    torch.manual_seed(0)
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.5, 0.3])
    true_kl = float((p * (p / q).log()).sum())
    a = torch.multinomial(p, 200_000, replacement=True)
    logp, logq = p.log()[a][None], q.log()[a][None]
    assert float(kl_estimate(logp, logq, "k1").mean()) == pytest.approx(true_kl, abs=0.01)
    assert float(kl_estimate(logp, logq, "k3").mean()) == pytest.approx(true_kl, abs=0.01)


def test_token_level_rewards_fold_kl_and_put_score_on_last_token():
    kl = torch.tensor([[0.1, 0.2, 0.3, 0.0], [0.5, -0.5, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0]])
    scores = torch.tensor([1.0, -1.0])
    r = token_level_rewards(scores, kl, mask, kl_coef=0.01)
    expected = torch.tensor([[-0.001, -0.002, -0.003 + 1.0, 0.0], [-0.005, 0.005 - 1.0, 0.0, 0.0]])
    torch.testing.assert_close(r, expected)


def test_gae_hand_computed():
    # one sequence of 3 tokens, then a pad
    r = torch.tensor([[0.0, 0.0, 1.0, 9.0]])
    v = torch.tensor([[0.5, 0.6, 0.7, 9.0]])
    m = torch.tensor([[1.0, 1, 1, 0]])
    gamma, lam = 1.0, 0.95
    adv, ret = gae(r, v, m, gamma, lam)
    # deltas: t2 = 1 + 0 - 0.7 = 0.3; t1 = 0 + 0.7 - 0.6 = 0.1; t0 = 0 + 0.6 - 0.5 = 0.1
    a2 = 0.3
    a1 = 0.1 + 0.95 * a2
    a0 = 0.1 + 0.95 * a1
    torch.testing.assert_close(adv, torch.tensor([[a0, a1, a2, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[a0 + 0.5, a1 + 0.6, a2 + 0.7, 0.0]]))


def test_gae_with_discount_and_lambda_one_is_discounted_return_minus_value():
    torch.manual_seed(1)
    r = torch.randn(2, 5)
    v = torch.randn(2, 5)
    m = torch.ones(2, 5)
    gamma = 0.9
    adv, ret = gae(r, v, m, gamma, lam=1.0)
    disc = torch.zeros(2)
    expected = torch.zeros(2, 5)
    for t in reversed(range(5)):
        disc = r[:, t] + gamma * disc
        expected[:, t] = disc
    torch.testing.assert_close(ret, expected)
    torch.testing.assert_close(adv, expected - v)


def test_gae_lambda_zero_is_one_step_td():
    r = torch.tensor([[1.0, 2.0, 3.0]])
    v = torch.tensor([[0.5, 1.0, 2.0]])
    adv, _ = gae(r, v, torch.ones(1, 3), gamma=1.0, lam=0.0)
    torch.testing.assert_close(adv, torch.tensor([[1.0 + 1.0 - 0.5, 2.0 + 2.0 - 1.0, 3.0 - 2.0]]))


def test_group_advantages_by_hand():
    scores = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    adv = group_advantages(scores, eps=0.0)
    std = torch.tensor([1.0, 0, 0, 1]).std()  # unbiased: sqrt(1/3)
    torch.testing.assert_close(adv[0], torch.tensor([0.5, -0.5, -0.5, 0.5]) / std)
    torch.testing.assert_close(adv[1], torch.zeros(4))  # uniform group: no signal
    torch.testing.assert_close(group_advantages(scores, std_normalize=False)[0], torch.tensor([0.5, -0.5, -0.5, 0.5]))


def test_masked_whiten_ignores_padding():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 0.0, -100.0]])
    m = torch.tensor([[1.0, 1, 0], [1, 0, 0]])
    w = masked_whiten(x, m)
    vals = torch.tensor([1.0, 2.0, 3.0])
    expected = (vals - 2.0) / vals.std()
    torch.testing.assert_close(w[m.bool()], expected, rtol=1e-5, atol=1e-5)
    assert w[~m.bool()].abs().sum() == 0
    assert float(masked_mean(x, m)) == pytest.approx(2.0)


def test_masked_whiten_with_summed_statistics_matches_whitening_the_whole_batch():
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    m = (torch.rand(6, 5) > 0.3).float()
    whole = masked_whiten(x, m)
    # two data-parallel "ranks" holding rows 0-2 and 3-5 add their sums and whiten alike
    parts = [masked_sums(x[:3], m[:3]), masked_sums(x[3:], m[3:])]
    total = tuple(a + b for a, b in zip(*parts, strict=True))
    split = torch.cat([masked_whiten(x[:3], m[:3], total), masked_whiten(x[3:], m[3:], total)])
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(masked_whiten(x[:3], m[:3]), whole[:3])  # local statistics differ
    scaled = masked_whiten(x, m, shift_mean=False)
    assert float(masked_mean(scaled, m)) != pytest.approx(0.0, abs=1e-3)


def test_reward_to_go_sums_from_each_token_on_and_ignores_padding():
    r = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 99.0]])
    m = torch.tensor([[1.0, 1, 1], [1, 1, 0]])
    torch.testing.assert_close(reward_to_go(r, m), torch.tensor([[6.0, 5.0, 3.0], [9.0, 5.0, 0.0]]))


def test_grpo_advantages_add_group_advantage_and_kl_penalty_to_go():
    scores = torch.tensor([1.0, 0.0, 0.5, 0.5])  # two prompts x n=2
    kl = torch.tensor([[0.1, 0.2], [0.0, 0.0], [0.3, 0.0], [0.0, 0.0]])
    m = torch.tensor([[1.0, 1], [1, 1], [1, 0], [1, 1]])
    adv = grpo_advantages(scores, kl, m, kl_coef=0.5, n=2)
    g = group_advantages(scores.view(2, 2)).view(-1)  # prompt 0: +-0.707; prompt 1: 0 (no signal)
    expected = g[:, None] * m + torch.tensor([[-0.15, -0.1], [0.0, 0.0], [-0.15, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(adv, expected)
    with pytest.raises(ValueError, match="groups of n=3"):
        grpo_advantages(scores, kl, m, kl_coef=0.5, n=3)


def test_adaptive_kl_controller_moves_toward_target():
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    ctl.update(current_kl=12.0, n_steps=1000)  # error clipped to +0.2 -> x(1 + 0.02)
    assert ctl.value == pytest.approx(0.102)
    ctl.update(current_kl=3.0, n_steps=1000)  # error -0.5 clipped to -0.2 -> x(1 - 0.02)
    assert ctl.value == pytest.approx(0.102 * 0.98)


def test_running_moments_match_full_data():
    torch.manual_seed(2)
    data = torch.randn(300) * 3 + 2
    rm = RunningMoments()
    for chunk in data.split(70):
        rm.update(float(chunk.mean()), float(chunk.var(unbiased=False)), chunk.numel())
    assert rm.mean == pytest.approx(float(data.mean()), abs=1e-5)
    assert rm.std == pytest.approx(float(data.std(unbiased=False)), abs=1e-4)
