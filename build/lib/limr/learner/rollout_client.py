"""How the learner talks to a generator: `generate` n samples per prompt, `sync_weights` after each step.

Two implementations behind one small protocol:
- `ServiceRollout`: the Ray Serve rollout service (vLLM), the production path (limr.learner.service_rollout);
- `LocalRollout`: HuggingFace `generate` on the worker's own copy of the actor. No Ray Serve, no vLLM:
  the no-cluster mode for debugging and for fast tests of the loop, checkpoints and resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from limr.learner.batch import Rollout

if TYPE_CHECKING:
    from limr.learner.dist import DistCtx
    from limr.learner.trainer import PPOTrainer


@dataclass(frozen=True)
class Sampling:
    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int | None = None


class RolloutClient(Protocol):
    def generate(self, prompt_token_ids: list[list[int]], sampling: Sampling) -> list[Rollout]:
        """n rollouts per prompt, ordered by (prompt, sample)."""

    def sync_weights(self, trainer: PPOTrainer, ctx: DistCtx, final: bool = False) -> int:
        """Load the trainer's current actor (every rank calls it); returns the new weight version. `final`: the
        run's last weights (a service also exports them for replicas that start after the run)."""

    @property
    def weight_version(self) -> int: ...

    def close(self) -> None: ...


class LocalRollout:
    """Sample with HF `generate` from a private copy of the policy (CPU-friendly, no engine)."""

    def __init__(self, model_path: str, eos_token_ids: list[int], pad_token_id: int, dtype: str = "float32"):
        from limr.learner.models import load_reference

        self.model: nn.Module = load_reference(model_path, dtype)
        self.eos = set(eos_token_ids)
        self.pad = pad_token_id
        self._version = 0

    @property
    def weight_version(self) -> int:
        return self._version

    def sync_weights(self, trainer: PPOTrainer, ctx: DistCtx, final: bool = False) -> int:
        """Copy this rank's actor into the private sampler (each rank has its own; nothing to export)."""
        self.model.load_state_dict(trainer.actor_state_for_rollout())
        self._version += 1
        return self._version

    @torch.no_grad()
    def generate(self, prompt_token_ids: list[list[int]], sampling: Sampling) -> list[Rollout]:
        gen = torch.Generator().manual_seed(sampling.seed if sampling.seed is not None else 0)
        out: list[Rollout] = []
        for pi, prompt in enumerate(prompt_token_ids):
            for s in range(sampling.n):
                ids, lps, reason = self._sample_one(prompt, sampling, gen)
                out.append(Rollout(pi, s, list(prompt), ids, lps, "", reason, self._version))
        return out

    def _sample_one(self, prompt: list[int], sp: Sampling, gen: torch.Generator):
        """Token-by-token sampling with a KV cache; returns (ids, logprobs of the sampled tokens, finish reason)."""
        input_ids = torch.tensor([prompt], dtype=torch.long)
        past, ids, lps = None, [], []
        for _ in range(sp.max_new_tokens):
            out = self.model(input_ids=input_ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()  # (V,)
            if sp.temperature == 0:
                tok = int(logits.argmax())
                lp = float(torch.log_softmax(logits, -1)[tok])
            else:
                logp = torch.log_softmax(logits / sp.temperature, -1)  # (V,)
                probs = logp.exp()
                if sp.top_p < 1.0:
                    probs = _top_p_filter(probs, sp.top_p)
                tok = int(torch.multinomial(probs, 1, generator=gen))
                lp = float(logp[tok])
            ids.append(tok)
            lps.append(lp)
            if tok in self.eos:
                return ids, lps, "stop"
            input_ids = torch.tensor([[tok]], dtype=torch.long)
        return ids, lps, "length"

    def close(self) -> None:
        pass


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_p, order = probs.sort(descending=True)
    keep = sorted_p.cumsum(0) - sorted_p < top_p  # (V,) keep the smallest prefix reaching top_p
    filtered = torch.zeros_like(probs)
    filtered[order[keep]] = sorted_p[keep]
    return filtered / filtered.sum()
