"""PPO policy/value losses and helpers against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from limr.algo.ppo import explained_variance, logprobs_from_logits, policy_loss, value_loss, warmup_lr_factor


def test_policy_loss_clipping_by_hand():
    # ratios e^{0.1}≈1.105 (inside), e^{0.5}≈1.649 (clipped for A>0), e^{-0.5}≈0.607 (clipped for A<0)
    old = torch.zeros(1, 4)
    new = torch.tensor([[0.1, 0.5, -0.5, 0.5]])
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    out = policy_loss(new, old, adv, mask, clip_eps=0.2)
    r = [math.exp(0.1), math.exp(0.5), math.exp(-0.5), math.exp(0.5)]
    # token 0: max(-1.105, -1.105); token 1: max(-1.649, -1.2) = -1.2;
    # token 2: max(0.607, 0.8) = 0.8; token 3 (A<0, ratio up): max(1.649, 1.2) = 1.649 (pessimistic, unclipped)
    expected = -r[0] - 1.2 + 0.8 + r[3]
    assert float(out.loss_sum) == pytest.approx(expected, rel=1e-5)
    assert float(out.clipfrac) == pytest.approx(3 / 4)
    approx_kl = sum((ri - 1) - math.log(ri) for ri in r) / 4
    assert float(out.approx_kl) == pytest.approx(approx_kl, rel=1e-4)


def test_policy_loss_masks_padding_and_gradient_of_clipped_token_is_zero():
    new = torch.tensor([[0.5, 0.0, 3.0]], requires_grad=True)
    old = torch.zeros(1, 3)
    adv = torch.tensor([[1.0, 2.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    out = policy_loss(new, old, adv, mask, 0.2)
    out.loss_sum.backward()
    # clipped token (ratio 1.65 > 1.2 with A > 0): no gradient; ratio 1 token: d(-A r)/dlogp = -A r = -2; pad: 0
    torch.testing.assert_close(new.grad, torch.tensor([[0.0, -2.0, 0.0]]))
    assert float(out.loss_sum.detach()) == pytest.approx(-1.2 - 2.0)


def test_value_loss_clipped_by_hand():
    old = torch.tensor([[1.0, 1.0, 1.0]])
    new = torch.tensor([[1.1, 2.0, 0.0]])
    ret = torch.tensor([[1.5, 3.0, 0.0]])
    mask = torch.ones(1, 3)
    out = value_loss(new, old, ret, mask, clip_eps=0.2)
    # token 0: unclipped (1.1-1.5)^2=0.16; clipped v=1.1 same -> 0.16
    # token 1: unclipped (2-3)^2 = 1; clipped v=1.2 -> (1.2-3)^2 = 3.24 -> max 3.24
    # token 2: unclipped 0; clipped v=0.8 -> 0.64 -> 0.64
    assert float(out.loss_sum) == pytest.approx(0.5 * (0.16 + 3.24 + 0.64), rel=1e-5)
    assert float(out.clipfrac) == pytest.approx(2 / 3)
    unclipped = value_loss(new, old, ret, mask, clip_eps=None)
    assert float(unclipped.loss_sum) == pytest.approx(0.5 * (0.16 + 1.0 + 0.0), rel=1e-5)


def test_logprobs_from_logits():
    logits = torch.tensor([[[0.0, math.log(3.0)], [2.0, 2.0]]])  # (1, 2, 2)
    labels = torch.tensor([[1, 0]])
    lp = logprobs_from_logits(logits, labels)
    torch.testing.assert_close(lp, torch.tensor([[math.log(0.75), math.log(0.5)]]))


def test_explained_variance():
    ret = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    mask = torch.ones(1, 4)
    assert explained_variance(ret, ret, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(ret, 2.5), ret, mask) == pytest.approx(0.0)


def test_warmup_lr_factor():
    assert [warmup_lr_factor(s, 4, 100) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert warmup_lr_factor(100, 0, 100, "cosine") == pytest.approx(0.1)
    assert warmup_lr_factor(50, 0, 100, "cosine") == pytest.approx(0.55)
    with pytest.raises(ValueError):
        warmup_lr_factor(5, 0, 10, "linear-ish")
