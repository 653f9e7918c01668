"""The learner's batch vocabulary: generated rollouts, their token tensors, and the experience PPO trains on.

Sequences are laid out as [left-padded prompt | right-padded response] so that response token t of every
row sits at column P + t (P = padded prompt length) and the logits predicting it at column P + t - 1.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Rollout:
    """One generated sample of one prompt, as the rollout service returned it."""

    prompt_index: int  # index of the prompt in the worker's prompt list for this step
    sample: int  # 0..n-1 within its prompt
    prompt_token_ids: list[int]
    response_token_ids: list[int]
    response_logprobs: list[float] | None  # the engine's logprobs of the sampled tokens (None if not returned)
    text: str
    finish_reason: str | None  # "stop" | "length" | ...
    weight_version: int | None = None


@dataclass
class TokenBatch:
    """Token tensors of B samples."""

    input_ids: torch.Tensor  # (B, P + R) long
    attention_mask: torch.Tensor  # (B, P + R) long
    response_mask: torch.Tensor  # (B, R) float: 1 on real response tokens
    prompt_len: int  # P

    @property
    def response_ids(self) -> torch.Tensor:
        return self.input_ids[:, self.prompt_len :]  # (B, R)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, idx: torch.Tensor) -> TokenBatch:
        return TokenBatch(self.input_ids[idx], self.attention_mask[idx], self.response_mask[idx], self.prompt_len)

    def to(self, device: torch.device) -> TokenBatch:
        return TokenBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.response_mask.to(device), self.prompt_len
        )


def collate(rollouts: list[Rollout], pad_id: int) -> TokenBatch:
    """Pack rollouts into a TokenBatch; an empty response gets no mask (it contributes nothing to the loss)."""
    P = max(len(r.prompt_token_ids) for r in rollouts)
    R = max(1, max(len(r.response_token_ids) for r in rollouts))
    B = len(rollouts)
    input_ids = torch.full((B, P + R), pad_id, dtype=torch.long)  # (B, P + R)
    attention_mask = torch.zeros((B, P + R), dtype=torch.long)  # (B, P + R)
    response_mask = torch.zeros((B, R), dtype=torch.float32)  # (B, R)
    for i, r in enumerate(rollouts):
        p, n = len(r.prompt_token_ids), len(r.response_token_ids)
        input_ids[i, P - p : P] = torch.tensor(r.prompt_token_ids, dtype=torch.long)
        attention_mask[i, P - p : P] = 1
        if n:
            input_ids[i, P : P + n] = torch.tensor(r.response_token_ids, dtype=torch.long)
            attention_mask[i, P : P + n] = 1
            response_mask[i, :n] = 1.0
    return TokenBatch(input_ids, attention_mask, response_mask, P)


def rollout_logprobs_tensor(rollouts: list[Rollout], R: int) -> torch.Tensor | None:
    """The engine's logprobs as (B, R), or None when any rollout lacks them."""
    if any(r.response_logprobs is None for r in rollouts):
        return None
    out = torch.zeros((len(rollouts), R), dtype=torch.float32)  # (B, R)
    for i, r in enumerate(rollouts):
        lp = r.response_logprobs or []
        if lp:
            out[i, : len(lp)] = torch.tensor(lp, dtype=torch.float32)
    return out


@dataclass
class Experience:
    """Everything one PPO update needs for B samples; all (B, R) tensors share `tokens.response_mask`."""

    tokens: TokenBatch
    old_logprobs: torch.Tensor  # (B, R) behaviour-policy logprobs used in the ratio
    ref_logprobs: torch.Tensor  # (B, R) frozen reference model
    advantages: torch.Tensor  # (B, R)
    returns: torch.Tensor  # (B, R) GAE targets for the critic (zeros under GRPO)
    values: torch.Tensor  # (B, R) critic values used for GAE (zeros under GRPO)
    scores: torch.Tensor  # (B,) task reward before KL shaping

    def __len__(self) -> int:
        return len(self.tokens)

    def select(self, idx: torch.Tensor) -> Experience:
        kw = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name != "tokens"}
        return Experience(tokens=self.tokens.select(idx), **kw)

    def to(self, device: torch.device) -> Experience:
        kw = {f.name: getattr(self, f.name).to(device) for f in fields(self) if f.name != "tokens"}
        return Experience(tokens=self.tokens.to(device), **kw)
