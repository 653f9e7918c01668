"""The tiny model: deterministic by seed, loadable by transformers and vLLM, which agree on greedy output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from limr.model.tiny import IM_END, TinyModelConfig, build_tokenizer, init_tiny_model  # noqa: E402

PROMPTS = [
    "<|im_start|>user\nWhat is 12 + 34?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nSolve 3x + 4 = 19.<|im_end|>\n<|im_start|>assistant\n",
    "Question: 7 * 8 =",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_tiny_model(tmp_path_factory.mktemp("tiny") / "m", seed=0)


def test_tokenizer_is_byte_level_and_round_trips() -> None:
    tok = build_tokenizer()
    text = "Compute $\\frac{1}{2}$ + 0.5 = \\boxed{1}; é ∞ 中\n"
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert tok("~%", add_special_tokens=False)["input_ids"] == [ord("~"), ord("%")]  # id == byte
    # digits stay one token each; the system prompt's words are whole tokens
    assert tok.convert_ids_to_tokens(tok("x = 1234")["input_ids"]) == ["x", "Ġ=", "Ġ", "1", "2", "3", "4"]
    assert tok.convert_ids_to_tokens(tok(" reason step by step")["input_ids"]) == ["Ġreason", "Ġstep", "Ġby", "Ġstep"]
    assert tok.eos_token == IM_END and tok.pad_token_id != tok.eos_token_id
    # special tokens are single ids, so the chat template costs a few tokens only
    assert tok.convert_ids_to_tokens(tok("<|im_start|>user\n")["input_ids"]) == ["<|im_start|>", "user", "Ċ"]


def test_deterministic_by_seed(tmp_path: Path, tiny_dir: Path) -> None:
    again = init_tiny_model(tmp_path / "again", seed=0)
    other = init_tiny_model(tmp_path / "other", seed=1)
    same = (tiny_dir / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == same
    assert (other / "model.safetensors").read_bytes() != same
    assert (again / "tokenizer.json").read_text() == (tiny_dir / "tokenizer.json").read_text()


def test_refuses_non_empty_dir_and_bad_shapes(tmp_path: Path, tiny_dir: Path) -> None:
    with pytest.raises(FileExistsError):
        init_tiny_model(tiny_dir)
    with pytest.raises(ValueError, match="num_heads"):
        TinyModelConfig(hidden_size=100)
    with pytest.raises(ValueError):
        TinyModelConfig(hidden_size=64, num_heads=4, head_dim=16)  # vLLM CPU needs head_dim >= 32


def test_loads_in_transformers(tiny_dir: Path) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir)
    tok = transformers.AutoTokenizer.from_pretrained(tiny_dir)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.head_dim == 64 and model.config.num_attention_heads == 2
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    out = model(**tok(PROMPTS[0], return_tensors="pt"))
    assert out.logits.shape[-1] == model.config.vocab_size >= len(tok)


_VLLM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    if __name__ == "__main__":
        from vllm import LLM, SamplingParams
        model, prompts = sys.argv[1], json.loads(sys.argv[2])
        llm = LLM(model=model, dtype="float32", max_model_len=256, seed=0, enforce_eager=True)
        outs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True))
        print("RESULT " + json.dumps([list(o.outputs[0].token_ids) for o in outs]))
    """
)


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_and_transformers_agree_on_greedy(tmp_path: Path, tiny_dir: Path) -> None:
    pytest.importorskip("vllm")
    # Freshly initialised weights (std 0.02) give near-flat logits; sharpen them so greedy decoding
    # produces varied tokens and agreement is a real check, not "both repeat one token".
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    sharp = tmp_path / "sharp"
    model.save_pretrained(sharp)
    transformers.AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(sharp)

    tok = transformers.AutoTokenizer.from_pretrained(sharp)
    expected = []
    for prompt in PROMPTS:  # plain argmax loop: generate()'s min_new_tokens would mask EOS, vLLM's ignore_eos not
        ids = tok(prompt, return_tensors="pt").input_ids  # (1, T)
        with torch.no_grad():
            for _ in range(24):
                nxt = model(ids).logits[0, -1].argmax()
                ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
        expected.append(ids[0, -24:].tolist())
    assert any(len(set(e)) > 3 for e in expected), expected

    script = tmp_path / "gen.py"
    script.write_text(_VLLM_SCRIPT)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, str(script), str(sharp), json.dumps(PROMPTS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    got = json.loads(lines[-1][len("RESULT ") :])
    assert got == expected
