"""SFT warm start: response-only labels, and a short run that learns (loss falls) and saves a loadable model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from limr.data.templates import render_prompt  # noqa: E402
from limr.model.sft import IGNORE, SFTConfig, build_examples, run_sft  # noqa: E402
from limr.model.tiny import build_tokenizer, init_tiny_model  # noqa: E402
from limr.tasks.synthetic import SyntheticConfig, generate, make_splits, train_seed  # noqa: E402


def test_examples_mask_the_prompt_and_end_with_eos(tmp_path: Path) -> None:
    tok = build_tokenizer()
    cfg = SFTConfig(model=tmp_path, out=tmp_path / "o", n_train=300, levels=(1, 4))
    examples = build_examples(tok, cfg)
    train = generate(300, seed=train_seed(0), levels=(1, 4), exclude=_benchmark())
    assert len(examples) == 300
    for (ids, labels), p in zip(examples, train, strict=True):
        n_prompt = sum(lab == IGNORE for lab in labels)
        assert tok.decode(ids[:n_prompt]) == render_prompt(p.prompt, tok)  # exactly what RL and eval render
        assert labels[n_prompt:] == ids[n_prompt:]
        assert tok.decode(ids[n_prompt:-1]) == p.solution and ids[-1] == tok.eos_token_id


def _benchmark() -> set[str]:
    return {p.prompt for p in make_splits(SyntheticConfig(seed=0, n_train=0))[1]}


def test_never_trains_on_the_eval_benchmark(tmp_path: Path) -> None:
    """Whatever levels or seed SFT uses, `limr eval --benchmarks synthetic` prompts are excluded."""
    tok = build_tokenizer()
    bench = {render_prompt(q, tok) for q in _benchmark() if q.startswith("What is") and len(q) < 18}
    assert bench  # level-1 problems: only ~1,000 exist, so a large level-1 pool would hit them
    for seed in (0, 1):
        examples = build_examples(
            tok, SFTConfig(model=tmp_path, out=tmp_path / "o", n_train=600, levels=(1,), seed=seed)
        )
        prompts = {
            tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab == IGNORE]) for ids, labels in examples
        }
        assert not prompts & bench


@pytest.mark.slow
def test_short_sft_run_learns_and_saves(tmp_path: Path) -> None:
    base = init_tiny_model(tmp_path / "base", seed=0)
    cfg = SFTConfig(
        model=base,
        out=tmp_path / "sft",
        steps=20,
        batch_size=8,
        n_train=200,
        warmup_steps=3,
        eval_n=0,
        progress=False,
    )
    result = run_sft(cfg)
    assert result.first_loss > 5.0  # ~ln(vocab) = 6.2 for a fresh model
    assert result.final_loss < result.first_loss - 1.5
    model = transformers.AutoModelForCausalLM.from_pretrained(result.out)
    tok = transformers.AutoTokenizer.from_pretrained(result.out)
    assert tok.padding_side == "right" and tok.eos_token == "<|im_end|>"
    before = transformers.AutoModelForCausalLM.from_pretrained(base)
    assert not torch.equal(model.model.embed_tokens.weight, before.model.embed_tokens.weight)
    meta = json.loads((result.out / "limr_sft.json").read_text())
    assert meta["config"]["steps"] == 20 and meta["result"]["final_loss"] == pytest.approx(result.final_loss)
    with pytest.raises(FileExistsError):
        run_sft(cfg)


def test_column_fraction_mixes_the_two_routes(tmp_path: Path) -> None:
    """About that share of additions is shown worked by column; the others keep the one-line solution."""
    from limr.tasks.synthetic import column_solution

    tok = build_tokenizer()
    train = generate(400, seed=train_seed(0), levels=(1,), exclude=_benchmark())
    for fraction in (0.0, 0.25, 1.0):
        cfg = SFTConfig(model=tmp_path, out=tmp_path / "o", n_train=400, levels=(1,), column_fraction=fraction)
        responses = [
            tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE][:-1])
            for ids, labels in build_examples(tok, cfg)
        ]
        column = [r == column_solution(p) for r, p in zip(responses, train, strict=True)]
        assert all(r in (p.solution, column_solution(p)) for r, p in zip(responses, train, strict=True))
        assert abs(sum(column) / len(column) - fraction) < 0.06
