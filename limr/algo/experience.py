"""The math of making PPO/GRPO experience from a batch's logprobs, values and scores (the learner's
`make_experience` calls these; its collectives and metric names stay in the trainer).

Statistics come back as sums (sum, sum of squares, count, ...) rather than means, so that data-parallel ranks
all-reduce them and agree on one figure for the global batch. Pure torch; shapes: B sequences, T response tokens,
`mask` (B, T) 1.0 on real response tokens.
"""

from __future__ import annotations

import torch

from limr.algo.advantages import gae, grpo_advantages, masked_sum, token_level_rewards


def advantages_and_returns(
    scores: torch.Tensor,
    kl: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    n: int,
    values: torch.Tensor | None = None,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token advantages and returns, (B, T) each. With a critic's `values` (B, T): PPO, GAE over the rewards with
    the per-token KL penalty folded in (`token_level_rewards`). Without: GRPO, the group-relative advantage of the
    n samples of each prompt plus the reward-to-go of the KL penalty; returns are zeros (nothing to fit).
    scores (B,) ordered by (prompt, sample), kl (B, T)."""
    if values is not None:
        return gae(token_level_rewards(scores, kl, mask, kl_coef), values, mask, gamma, lam)
    return grpo_advantages(scores, kl, mask, kl_coef, n), torch.zeros_like(mask)


def logprob_gap_sums(engine_logprobs: torch.Tensor, logprobs: torch.Tensor, mask: torch.Tensor) -> tuple[float, ...]:
    """(sum, max, count) of |engine logprob - learner logprob| over response tokens, (B, T) each: how far the
    sampler's distribution is from the one the learner computes for the same weights (mean = sum / count)."""
    gap = (engine_logprobs - logprobs).abs() * mask  # (B, T)
    return gap.sum().item(), gap.max().item() if gap.numel() else 0.0, mask.sum().item()


def value_sums(x: torch.Tensor) -> tuple[float, float, float]:
    """(sum, sum of squares, count) of every entry of `x`: with other ranks' sums, the batch's mean and variance."""
    return x.sum().item(), (x * x).sum().item(), float(x.numel())


def mean_var_from_sums(total: float, total_sq: float, count: float) -> tuple[float, float]:
    """Mean and (population) variance from `value_sums`; the variance is clamped at 0 against rounding."""
    mean = total / count
    return mean, max(total_sq / count - mean * mean, 0.0)


def value_fit_sums(returns: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """[sum returns, sum returns^2, sum resid, sum resid^2] over response tokens (resid = returns - values): the
    input of limr.algo.ppo.explained_variance_from_sums."""
    resid = (returns - values) * mask  # (B, T)
    return [
        masked_sum(returns, mask).item(),
        masked_sum(returns * returns, mask).item(),
        resid.sum().item(),
        (resid * resid).sum().item(),
    ]
