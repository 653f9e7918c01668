"""PPO losses in CleanRL's order and names (ratio, pg_loss1/pg_loss2, clipped value loss, approx_kl, clipfrac).

Pure torch. Token-level: every tensor is (B, T) over response tokens with a (B, T) mask; losses are
reduced with `token_sum`, and the caller divides by the global token count of the mini-batch so that
gradient accumulation and data parallelism give the same gradient as one big batch (a token-mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from limr.algo.advantages import masked_mean


@dataclass
class PolicyLossOut:
    loss_sum: torch.Tensor  # scalar: sum over masked tokens of max(pg_loss1, pg_loss2)
    approx_kl: torch.Tensor  # scalar: mean k3 estimate of KL(old || new)
    clipfrac: torch.Tensor  # scalar: share of tokens where the ratio left [1-eps, 1+eps]


@dataclass
class ValueLossOut:
    loss_sum: torch.Tensor  # scalar: sum over masked tokens of 0.5 * max(unclipped, clipped) squared error
    clipfrac: torch.Tensor  # scalar: share of tokens where the value moved more than eps from the old value


def logprobs_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of `labels` under `logits`: (B, T, V), (B, T) -> (B, T).

    log_softmax in float32: bf16 logits lose the precision the ratio needs.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    return torch.gather(logp, -1, labels.unsqueeze(-1)).squeeze(-1)


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
) -> PolicyLossOut:
    """Clipped surrogate objective (Schulman et al. 2017, https://arxiv.org/abs/1707.06347), token level."""
    logratio = logprobs - old_logprobs  # (B, T)
    ratio = logratio.exp()  # (B, T)
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    pg_loss = torch.max(pg_loss1, pg_loss2)  # (B, T)
    with torch.no_grad():
        # k3 estimator of KL(old || new): http://joschu.net/blog/kl-approx.html
        approx_kl = masked_mean((ratio - 1.0) - logratio, mask)
        clipfrac = masked_mean(((ratio - 1.0).abs() > clip_eps).float(), mask)
    return PolicyLossOut((pg_loss * mask).sum(), approx_kl, clipfrac)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float | None = 0.2,
) -> ValueLossOut:
    """Clipped value loss: the new value may move at most clip_eps from the value used for GAE."""
    v_loss_unclipped = (values - returns) ** 2  # (B, T)
    if clip_eps is None:
        v_loss = 0.5 * v_loss_unclipped
        clipfrac = torch.zeros((), device=values.device)
    else:
        v_clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
        v_loss_clipped = (v_clipped - returns) ** 2
        v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped)
        with torch.no_grad():
            clipfrac = masked_mean(((values - old_values).abs() > clip_eps).float(), mask)
    return ValueLossOut((v_loss * mask).sum(), clipfrac)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over masked tokens: 1 is a perfect critic, <= 0 a useless one."""
    y, resid = returns * mask, (returns - values) * mask
    sums = (y.sum(), (y**2).sum(), resid.sum(), (resid**2).sum(), mask.sum())
    return explained_variance_from_sums(*(float(x) for x in sums))


def explained_variance_from_sums(
    sum_returns: float, sum_returns_sq: float, sum_resid: float, sum_resid_sq: float, count: float
) -> float:
    """`explained_variance` from token sums (returns, returns^2, resid, resid^2 over masked tokens), so that data-
    parallel ranks can all-reduce the sums and agree on one figure for the global batch."""
    if count <= 0:
        return float("nan")
    var_y = sum_returns_sq / count - (sum_returns / count) ** 2
    if var_y <= 0:
        return float("nan")
    var_r = sum_resid_sq / count - (sum_resid / count) ** 2
    return 1.0 - var_r / var_y


def warmup_lr_factor(
    step: int, warmup_steps: int, total_steps: int, schedule: str = "constant", min_ratio: float = 0.1
) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based): linear warm-up, then constant
    or cosine decay to `min_ratio` (OpenRLHF uses cosine with a 10% floor)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr schedule {schedule!r}; use constant or cosine")
