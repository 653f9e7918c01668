"""A tiny Qwen2 causal LM with its own byte-level tokenizer, for CPU tests and demos.

The model is small enough to train and serve on two CPU cores, yet it is a real `Qwen2ForCausalLM`
saved in HuggingFace format (config.json, model.safetensors, tokenizer.json), so the same code paths
load it in transformers, vLLM (CPU build here, CUDA on GPUs) and the learner. vLLM's CPU attention
needs head_dim >= 32, hence the default of 2 heads of 64 over a hidden size of 128.

The tokenizer is byte-level BPE: any text encodes without unknown tokens, digits stay one token each
(good for arithmetic), and a hand-built list of merges makes the system prompt and common words single
tokens, so prompts stay short (cheap SFT and rollouts on CPU). It needs no training data, so the whole
directory is a pure function of the seed and the shape arguments.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from limr.model.save import save_model_dir

EOS_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (EOS_TOKEN, IM_START, IM_END)

# ChatML, the format Qwen2.5 uses; the tokenizer's own chat template so `limr.data.templates` renders
# tiny-model prompts through the same `apply_chat_template` call as real Qwen models.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class TinyModelConfig(BaseModel):
    """Shape of the tiny model. Defaults give ~0.9M parameters."""

    hidden_size: int = Field(128, description="Model width; must equal num_heads * head_dim.")
    num_layers: int = Field(4, ge=1, description="Decoder layers.")
    num_heads: int = Field(2, ge=1, description="Attention heads (also KV heads).")
    head_dim: int = Field(64, ge=32, description="Per-head width; vLLM CPU attention needs >= 32.")
    intermediate_size: int = Field(512, ge=1, description="MLP width.")
    max_position_embeddings: int = Field(2048, ge=64, description="Longest sequence (prompt + response).")
    vocab_multiple: int = Field(64, ge=1, description="Pad the vocabulary to a multiple of this (kernel friendly).")

    @model_validator(mode="after")
    def _check_width(self) -> TinyModelConfig:
        if self.hidden_size != self.num_heads * self.head_dim:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must equal num_heads * head_dim "
                f"({self.num_heads} * {self.head_dim})"
            )
        return self


# Whole words that become single tokens (with and without a leading space): the LIMR system prompt, the
# chat roles, and frequent words of math problems and of the synthetic tasks' solutions. Digits are never
# merged, so arithmetic stays digit by digit.
_WORDS = (
    "Please reason step by step, and put your final answer within boxed "
    "system user assistant Question Answer "
    "What is Solve for The answer So Let the of a an to in that be we We have find Find Compute compute "
    "value number integer sum product equation solve Therefore then if and are with this which "
    "frac dfrac sqrt cdot times left right pi text "
    "= + - * / \\"
).split()


def _merges() -> list[tuple[str, str]]:
    """BPE merges that turn each word of `_WORDS` (and its space-prefixed form) into one token.

    A tiny deterministic BPE training run over the word list: repeatedly merge the most frequent
    adjacent pair (ties broken by the pair itself) until every word is a single token. Trained here,
    in Python, rather than with the `tokenizers` trainer, so the result is identical in every process;
    and, being real BPE training, encoding a listed word reproduces its single token.
    """
    table = _bytes_to_unicode()
    words = [[table[b] for b in text.encode("utf-8")] for w in _WORDS for text in (w, " " + w)]
    words = [list(w) for w in dict.fromkeys(tuple(w) for w in words)]  # unique, in order
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for w in words:
            for pair in zip(w, w[1:], strict=False):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            return merges
        best = min(counts, key=lambda pr: (-counts[pr], pr))
        merges.append(best)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i : i + 2] = [w[i] + w[i + 1]]
                i += 1


def build_tokenizer():
    """A byte-level BPE `PreTrainedTokenizerFast`: 256 byte tokens (id == byte), the special tokens, then
    whole-word tokens for the system prompt and common math words (prompts are ~3x shorter than bytes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: b for b, ch in _bytes_to_unicode().items()}
    for tok_text in SPECIAL_TOKENS:
        vocab[tok_text] = len(vocab)
    merges = _merges()
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    # GPT-2 pre-tokenization: words, digit runs and punctuation runs never merge across each other.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,  # as in Qwen2.5 chat models: a turn ends with <|im_end|>
        pad_token=EOS_TOKEN,
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, the alphabet of byte-level BPE.

    Printable bytes map to themselves; the others to U+0100 onwards in byte order, so token id == byte.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def init_tiny_model(out_dir: str | Path, seed: int = 0, config: TinyModelConfig | None = None) -> Path:
    """Write a freshly initialised tiny Qwen2 model and its tokenizer to `out_dir`; return the path.

    Deterministic: the same seed and config give byte-identical safetensors. Written to a temp directory
    and renamed, so an interrupted call never leaves a half-written model behind.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = config or TinyModelConfig()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    tokenizer = build_tokenizer()
    vocab = len(tokenizer)
    vocab_size = -(-vocab // cfg.vocab_multiple) * cfg.vocab_multiple
    qcfg = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        head_dim=cfg.head_dim,
        max_position_embeddings=cfg.max_position_embeddings,
        max_window_layers=cfg.num_layers,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        use_sliding_window=False,
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    # Fork the RNG so seeding here does not disturb the caller's global torch state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(qcfg)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    return save_model_dir(out, model, tokenizer, "limr_tiny.json", {"seed": seed, **cfg.model_dump()})
