"""`LocalGenerator`: HF `generate` on the rank's own copy of the policy (no Ray Serve, no vLLM), the learner's
no-cluster mode for debugging and for fast tests of the loop, checkpoints and resume."""

from __future__ import annotations

import torch
from torch import nn

from limr.learner.batch import Rollout
from limr.learner.dist import DistCtx
from limr.learner.generator.base import Sampling


class LocalGenerator:
    """Sample with HF `generate` from a private copy of the policy (CPU-friendly, no engine)."""

    shared = False  # every rank samples from its own copy

    def __init__(self, model_path: str, eos_token_ids: list[int], pad_token_id: int, dtype: str = "float32"):
        from limr.learner.models import load_reference

        self.model: nn.Module = load_reference(model_path, dtype)
        self.eos = set(eos_token_ids)
        self.pad = pad_token_id
        self._version = 0

    def sync_weights(self, actor: nn.Module, ctx: DistCtx, final: bool = False) -> int:
        """Copy this rank's actor into the private sampler (each rank has its own; nothing to export)."""
        self.model.load_state_dict(full_state(actor))
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


def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A module's full weights on CPU in its compute dtype (limr.learner.precision); under FSDP2 gathered from
    every rank onto every rank (a collective: every rank calls it)."""
    from limr.learner.models import unwrap
    from limr.learner.precision import compute_dtype_of, compute_state, is_sharded

    module = unwrap(model)
    if is_sharded(module):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = {
            k: v.cpu() for k, v in get_model_state_dict(module, options=StateDictOptions(full_state_dict=True)).items()
        }
    else:
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    dtype = compute_dtype_of(module)
    return state if dtype is None else compute_state(state, dtype)


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_p, order = probs.sort(descending=True)
    keep = sorted_p.cumsum(0) - sorted_p < top_p  # (V,) keep the smallest prefix reaching top_p
    filtered = torch.zeros_like(probs)
    filtered[order[keep]] = sorted_p[keep]
    return filtered / filtered.sum()
