"""make_experience's math as pure functions: advantages by estimator, and statistics as sums ranks can all-reduce."""

from __future__ import annotations

import math

import pytest
import torch

from limr.algo.advantages import gae, grpo_advantages, token_level_rewards
from limr.algo.experience import (
    advantages_and_returns,
    logprob_gap_sums,
    mean_var_from_sums,
    value_fit_sums,
    value_sums,
)
from limr.algo.ppo import explained_variance, explained_variance_from_sums


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.float32)  # (B=4, T=4)
    return {
        "scores": torch.tensor([1.0, -0.5, 1.0, -1.0]),  # (B,) two prompts x n=2
        "kl": torch.rand(4, 4, generator=g) * 0.1 * mask,
        "values": torch.randn(4, 4, generator=g) * mask,
        "mask": mask,
    }


def test_with_a_critic_it_is_gae_over_kl_shaped_rewards(batch) -> None:  # noqa: ANN001
    s, kl, v, m = batch["scores"], batch["kl"], batch["values"], batch["mask"]
    adv, ret = advantages_and_returns(s, kl, m, 0.05, 2, v, gamma=0.99, lam=0.9)
    want_adv, want_ret = gae(token_level_rewards(s, kl, m, 0.05), v, m, 0.99, 0.9)
    assert torch.equal(adv, want_adv) and torch.equal(ret, want_ret)


def test_without_a_critic_it_is_grpo_and_returns_nothing_to_fit(batch) -> None:  # noqa: ANN001
    s, kl, m = batch["scores"], batch["kl"], batch["mask"]
    adv, ret = advantages_and_returns(s, kl, m, 0.05, 2)
    assert torch.equal(adv, grpo_advantages(s, kl, m, 0.05, 2)) and torch.equal(ret, torch.zeros_like(m))
    assert (adv * (1 - m)).abs().sum() == 0  # nothing under padding


def test_sums_split_over_ranks_give_the_global_figures(batch) -> None:  # noqa: ANN001
    """Two ranks' sums added equal the whole batch's: the reason every statistic is returned as sums."""
    s, v, m = batch["scores"], batch["values"], batch["mask"]
    returns = v + 0.3 * torch.ones_like(v) * m + 0.1 * torch.arange(4.0).unsqueeze(1) * m  # (B, T)
    halves = [value_sums(part) for part in (s[:2], s[2:])]
    mean, var = mean_var_from_sums(*[a + b for a, b in zip(*halves, strict=True)])
    assert mean == pytest.approx(s.mean().item()) and var == pytest.approx(s.var(unbiased=False).item())
    first, second = value_fit_sums(returns[:2], v[:2], m[:2]), value_fit_sums(returns[2:], v[2:], m[2:])
    fit = [a + b for a, b in zip(first, second, strict=True)]
    ev = explained_variance_from_sums(*fit, m.sum().item())
    assert ev == pytest.approx(explained_variance(v, returns, m), abs=1e-6)
    assert mean_var_from_sums(3.0, 3.0 - 1e-12, 3.0)[1] == 0.0  # rounding never gives a negative variance


def test_logprob_gap_sums_measure_the_sampler_learner_difference_on_real_tokens(batch) -> None:  # noqa: ANN001
    m = batch["mask"]
    learner = torch.full((4, 4), -1.0)
    engine = learner + 0.25 * m + 5.0 * (1 - m)  # a large gap under padding must not count
    total, worst, count = logprob_gap_sums(engine, learner, m)
    assert count == m.sum().item() and math.isclose(total, 0.25 * count) and math.isclose(worst, 0.25)
    assert logprob_gap_sums(torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0, 4)) == (0.0, 0.0, 0.0)
