"""Rewards and advantages for PPO/GRPO: KL estimators, per-token reward shaping, GAE, group advantages, whitening.

Pure torch; no Ray, vLLM or store imports, so tests load this directly. Shape conventions:
B = sequences (samples) in the batch, T = response tokens (right-padded), `mask` (B, T) is 1.0 on real
response tokens and 0.0 on padding. Every function ignores what sits under a zero mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

KLEstimator = Literal["k1", "k2", "k3"]


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    return (x * mask).sum() if dim is None else (x * mask).sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean over the entries where mask is 1 (0 when the mask is empty, not NaN)."""
    return masked_sum(x, mask, dim) / mask.sum(dim=dim).clamp(min=1)


def masked_sums(x: torch.Tensor, mask: torch.Tensor) -> tuple[float, float, float]:
    """(sum, sum of squares, count) of the masked entries: what data-parallel ranks all-reduce to whiten alike."""
    return masked_sum(x, mask).item(), masked_sum(x * x, mask).item(), mask.sum().item()


def masked_whiten(
    x: torch.Tensor,
    mask: torch.Tensor,
    sums: tuple[float, float, float] | None = None,
    shift_mean: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """(x - mean) / std over the masked entries (unbiased variance, as OpenRLHF/TRL do); padding stays 0.

    `sums` are `masked_sums` added over all ranks (default: this tensor's own), so that every rank whitens
    with the same statistics. `shift_mean=False` only scales (the mean is added back).
    """
    s, ss, c = masked_sums(x, mask) if sums is None else sums
    mean = s / max(c, 1.0)
    var = max(ss - c * mean * mean, 0.0) / max(c - 1.0, 1.0)
    out = (x - mean) * torch.rsqrt(torch.tensor(var, dtype=x.dtype) + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: KLEstimator = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi; shapes (B, T) -> (B, T).

    With log r = log pi_ref(a) - log pi(a) (http://joschu.net/blog/kl-approx.html):
      k1 = -log r              unbiased, high variance, can be negative (the classic RLHF penalty);
      k2 = (log r)^2 / 2       biased, low variance;
      k3 = (r - 1) - log r     unbiased, low variance, always >= 0.
    """
    log_ratio = ref_logprobs - logprobs  # (B, T)
    if kind == "k1":
        return -log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        # clamp: exp of a large log ratio from a far-off token would overflow and dominate the batch
        log_ratio = log_ratio.clamp(-20.0, 20.0)
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; use k1, k2 or k3")


def token_level_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Fold the per-token KL penalty into the reward (Ziegler et al. 2019; OpenRLHF `compute_reward`).

    r_t = -kl_coef * kl_t on every response token, plus the sequence score on the last real token.
    scores (B,), kl (B, T), mask (B, T) -> rewards (B, T).
    """
    rewards = -kl_coef * kl * mask  # (B, T)
    lengths = mask.sum(dim=1).long()  # (B,)
    last = (lengths - 1).clamp(min=0)  # (B,) index of the final response token
    has_tokens = (lengths > 0).to(rewards.dtype)
    rewards = rewards.clone()
    rewards[torch.arange(rewards.shape[0]), last] += scores.to(rewards.dtype) * has_tokens
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016, https://arxiv.org/abs/1506.02438).

    rewards, values, mask (B, T) -> advantages (B, T), returns (B, T) with returns = advantages + values.
    The value after the last response token is 0 (the episode ends there); padding contributes nothing.
      delta_t = r_t + gamma * V_{t+1} - V_t
      A_t     = delta_t + gamma * lam * A_{t+1}
    """
    values = values * mask
    rewards = rewards * mask
    B, T = rewards.shape
    advantages = torch.zeros_like(rewards)  # (B, T)
    last_gae = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)  # (B,)
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(last_gae)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last_gae = delta + gamma * lam * last_gae
        # a padded position passes nothing back, so the real last token bootstraps from 0
        last_gae = last_gae * mask[:, t]
        advantages[:, t] = last_gae
    returns = advantages + values
    return advantages * mask, returns * mask


def group_advantages(scores: torch.Tensor, std_normalize: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """GRPO outcome advantages (Shao et al. 2024, https://arxiv.org/abs/2402.03300): score relative to the group.

    scores (P, n): n samples of each of P prompts -> advantages (P, n) = (s - mean_group) / (std_group + eps).
    A group whose samples all score the same gets advantage 0 (nothing to learn from it).
    """
    mean = scores.mean(dim=1, keepdim=True)  # (P, 1)
    adv = scores - mean
    if std_normalize and scores.shape[1] > 1:
        std = scores.std(dim=1, keepdim=True)  # (P, 1)
        adv = torch.where(std > 0, adv / (std + eps), torch.zeros_like(adv))
    return adv


def broadcast_sequence_advantages(seq_adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Give every response token its sequence's advantage: (B,) x (B, T) -> (B, T)."""
    return seq_adv[:, None].to(mask.dtype) * mask


def reward_to_go(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum_{t' >= t} r_t' per token (undiscounted return from t on): (B, T) -> (B, T); padding adds nothing."""
    return (rewards * mask).flip(1).cumsum(1).flip(1) * mask


def grpo_advantages(
    scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float, n: int
) -> torch.Tensor:
    """GRPO token advantages: the group-relative outcome advantage of the sequence plus the reward-to-go of the
    per-token KL penalty -kl_coef * kl (the penalty folded into the reward, as PPO without a critic sees it).

    scores (B,) ordered by (prompt, sample) with n samples per prompt, kl (B, T), mask (B, T) -> (B, T).
    """
    if scores.numel() % n:
        raise ValueError(f"{scores.numel()} scores are not groups of n={n} samples per prompt")
    seq_adv = group_advantages(scores.view(-1, n)).view(-1)  # (B,)
    return broadcast_sequence_advantages(seq_adv, mask) + reward_to_go(-kl_coef * kl, mask)


class FixedKLController:
    """A constant KL coefficient."""

    def __init__(self, kl_coef: float):
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        pass

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Adaptive KL coefficient (Ziegler et al. 2019, https://arxiv.org/abs/1909.08593, section 2.2).

    Moves the coefficient proportionally toward the target KL, by at most 20% of the error per horizon.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int):
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        proportional_error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_steps / self.horizon

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


@dataclass
class RunningMoments:
    """Running mean/variance over all rewards seen so far (parallel Welford merge), for reward normalization.

    Scaling by the running std (not the batch std) keeps the reward scale stable from step to step.
    """

    mean: float = 0.0
    var: float = 1.0
    count: float = 1e-24

    def update(self, batch_mean: float, batch_var: float, batch_count: int) -> None:
        """Merge the moments of a batch (population variance) into the running ones."""
        if batch_count <= 0:
            return
        delta = batch_mean - self.mean
        total = self.count + batch_count
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.mean += delta * batch_count / total
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 0.0))

    def normalize(self, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        return (x - self.mean) / (self.std + eps)
