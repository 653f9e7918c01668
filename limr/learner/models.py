"""Actor, critic (a value head on the same architecture) and frozen reference model, plus their forward passes.

All three load from HuggingFace-format directories, so the tiny Qwen2 on CPU and Qwen2.5-Math-7B on GPUs
take the same path.
"""

from __future__ import annotations

import torch
from torch import nn

from limr.algo.ppo import logprobs_from_logits
from limr.learner.batch import TokenBatch
from limr.learner.precision import MASTER, mark_compute_dtype, torch_dtype


def load_actor(path: str, dtype: str = "float32", gradient_checkpointing: bool = False) -> nn.Module:
    """The trained policy: fp32 parameters (the master weights) that compute in `dtype` (limr.learner.precision)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(MASTER))
    mark_compute_dtype(model, dtype)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.config.use_cache = False
    return model


def load_reference(path: str, dtype: str = "float32") -> nn.Module:
    """The frozen policy the KL penalty measures against: the actor's starting weights, in the compute dtype (it
    is never updated, so it needs no fp32 masters)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype))
    model.eval()
    model.requires_grad_(False)
    return model


class Critic(nn.Module):
    """The actor's transformer body with a scalar value head instead of the LM head.

    The value at response position t estimates the return after the prompt and the first t response
    tokens, i.e. before token t is chosen: it reads the same hidden state as the logits predicting token t.
    """

    def __init__(self, backbone: nn.Module, hidden_size: int):
        super().__init__()
        self.backbone = backbone
        self.value_head = nn.Linear(hidden_size, 1)
        # small init: the critic starts near 0 instead of with a large random offset the actor must undo
        nn.init.normal_(self.value_head.weight, std=1.0 / (hidden_size + 1))
        nn.init.zeros_(self.value_head.bias)

    @classmethod
    def from_pretrained(cls, path: str, dtype: str = "float32", gradient_checkpointing: bool = False) -> Critic:
        from transformers import AutoModel

        backbone = AutoModel.from_pretrained(path, dtype=torch_dtype(MASTER))  # fp32 masters, like the actor
        mark_compute_dtype(backbone, dtype)
        if gradient_checkpointing:
            backbone.gradient_checkpointing_enable()
        backbone.config.use_cache = False
        return cls(backbone, backbone.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor):
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state  # (B, L, H)
        return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()  # (B, L)


def position_ids_of(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counting from the first real token, so left padding does not shift RoPE."""
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)  # (B, L)


def _response_slice(x: torch.Tensor, tb: TokenBatch) -> torch.Tensor:
    """Columns P-1 .. P+R-2: the positions whose outputs predict / value response tokens 0..R-1."""
    R = tb.response_mask.shape[1]
    return x[:, tb.prompt_len - 1 : tb.prompt_len - 1 + R]


def response_logprobs(model: nn.Module, tb: TokenBatch, temperature: float = 1.0) -> torch.Tensor:
    """Log-probabilities of the response tokens under `model`: (B, R).

    Logits are divided by the sampling temperature, as the engine did when it sampled, so ratios and KL
    compare the same distributions.
    """
    out = model(
        input_ids=tb.input_ids,
        attention_mask=tb.attention_mask,
        position_ids=position_ids_of(tb.attention_mask),
        use_cache=False,
    )
    logits = _response_slice(out.logits, tb)  # (B, R, V)
    if temperature and temperature != 1.0:
        logits = logits / temperature
    return logprobs_from_logits(logits, tb.response_ids) * tb.response_mask  # (B, R)


def response_values(critic: nn.Module, tb: TokenBatch) -> torch.Tensor:
    values = critic(tb.input_ids, tb.attention_mask, position_ids_of(tb.attention_mask))  # (B, P + R)
    return _response_slice(values, tb) * tb.response_mask  # (B, R)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP/FSDP wrapper."""
    return getattr(model, "module", model)
