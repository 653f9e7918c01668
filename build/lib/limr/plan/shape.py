"""A decoder model's shape and parameter counts, read from its HF `config.json` without loading weights.

`limr plan` sizes checkpoints, memory and FLOPs from these counts before anything starts. A model path that is
not readable here (a cluster volume such as /models/...) falls back to the shapes of the models the configs
name, keyed by the directory's last component; docs/scale.md derives the 7B figures by hand and
tests/plan/test_shape.py checks the code against them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelShape:
    """A Qwen2-style decoder (biases on q/k/v, gated MLP, RMSNorm)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool  # LM head shares the embedding matrix
    source: str = ""  # where the shape came from (config.json path or 'known: NAME')

    @property
    def layer_params(self) -> int:
        q = self.hidden * self.heads * self.head_dim + self.heads * self.head_dim
        kv = 2 * (self.hidden * self.kv_heads * self.head_dim + self.kv_heads * self.head_dim)
        o = self.heads * self.head_dim * self.hidden
        mlp = 3 * self.hidden * self.intermediate
        return q + kv + o + mlp + 2 * self.hidden

    @property
    def body_params(self) -> int:
        """`AutoModel`: embeddings, layers, final norm."""
        return self.vocab * self.hidden + self.layers * self.layer_params + self.hidden

    @property
    def causal_lm_params(self) -> int:
        """`AutoModelForCausalLM` (actor, reference): the body plus an LM head unless tied."""
        return self.body_params + (0 if self.tied else self.vocab * self.hidden)

    @property
    def critic_params(self) -> int:
        """limr.learner.models.Critic: the body plus a hidden -> 1 value head."""
        return self.body_params + self.hidden + 1

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache per token in a 2-byte dtype: K and V, every layer."""
        return 2 * self.layers * self.kv_heads * self.head_dim * 2


# The models the configs and the GPU check name (their published config.json values).
KNOWN: dict[str, ModelShape] = {
    "Qwen2.5-Math-7B": ModelShape(3584, 28, 28, 4, 128, 18944, 152064, False, "known: Qwen2.5-Math-7B"),
    "Qwen2.5-7B": ModelShape(3584, 28, 28, 4, 128, 18944, 152064, False, "known: Qwen2.5-7B"),
    "Qwen2.5-Math-1.5B": ModelShape(1536, 28, 12, 2, 128, 8960, 151936, True, "known: Qwen2.5-Math-1.5B"),
    "Qwen2.5-0.5B": ModelShape(896, 24, 14, 2, 64, 4864, 151936, True, "known: Qwen2.5-0.5B"),
}


def from_hf_config(cfg: dict, source: str = "") -> ModelShape:
    heads = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    return ModelShape(
        hidden=hidden,
        layers=int(cfg["num_hidden_layers"]),
        heads=heads,
        kv_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(cfg.get("head_dim") or hidden // heads),
        intermediate=int(cfg["intermediate_size"]),
        vocab=int(cfg["vocab_size"]),
        tied=bool(cfg.get("tie_word_embeddings", False)),
        source=source,
    )


def model_shape(path: str) -> ModelShape | None:
    """The shape of the model at `path` (its config.json), else a known model of that name, else None."""
    config = Path(path) / "config.json"
    if config.is_file():
        return from_hf_config(json.loads(config.read_text()), str(config))
    return KNOWN.get(Path(path.rstrip("/")).name)
