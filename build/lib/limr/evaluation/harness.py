"""`limr eval`: generate answers with vLLM under each benchmark's protocol and score them.

Generation goes through `limr.rollout.engine.RolloutEngine`, the project's one vLLM adapter (CPU build
here, CUDA vLLM on GPUs, same code). Prompts are rendered with `limr.data.templates` exactly as in RL
training (the released eval.py's system prompt and chat template). Equivalence is `limr.reward`'s
(math-verify). Under the `paper` protocol (the default) a sample is correct when its last `\\boxed{}` is
equivalent to the gold answer, as in the released eval.py; under `reward` it must earn reward 1.0 (well
formatted and finished too). The result names the protocol and every way the run departs from it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from limr.atomic import atomic_file
from limr.data.templates import Template, render_prompt
from limr.evaluation.benchmarks import DEFAULT_PROTOCOL, PROTOCOL_SETS, Benchmark, load_benchmark
from limr.reward import RewardPool, RewardPoolConfig, last_boxed


class EvalConfig(BaseModel):
    """One evaluation run."""

    model: Path = Field(description="HuggingFace model directory to evaluate.")
    benchmarks: list[str] = Field(["math500", "aime24", "amc23"], min_length=1, description="Benchmark names.")
    data_dir: Path | None = Field(None, description="Directory with <benchmark>.jsonl files (question, answer).")
    protocol: str = Field(
        DEFAULT_PROTOCOL, description=f"Sampling and answer checking: {', '.join(PROTOCOL_SETS)} (benchmarks.py)."
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="Generated tokens per sample; None: the protocol's (3,072 for paper) or what the model's "
        "context leaves after the longest prompt, whichever is smaller.",
    )
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N questions of each benchmark.")
    template: Template = Field(Template.AUTO, description="Prompt template (auto: chat if the tokenizer has one).")
    seed: int = Field(0, description="Sampling seed (and the synthetic benchmark's seed).")
    dtype: str = Field("auto", description="vLLM dtype: auto, float32, bfloat16, float16.")
    kv_cache_gib: float | None = Field(
        None, gt=0, description="KV-cache GiB; None: 1 GiB on CPU, sized by gpu_memory_utilization on GPUs."
    )
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="GPU memory share for vLLM.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine.")
    reward_workers: int | None = Field(None, ge=1, description="Reward processes (default: up to 4).")
    reward_timeout_s: float = Field(2.0, gt=0, description="Per-answer checking limit (timeouts are wrong).")

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, v: str) -> str:
        if v not in PROTOCOL_SETS:
            raise ValueError(f"unknown protocol {v!r}; known: {', '.join(PROTOCOL_SETS)}")
        return v

    @field_validator("benchmarks")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        names = [b.strip() for b in v if b.strip()]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmarks repeat: {v}")
        return names


def _max_positions(model_dir: Path) -> int:
    cfg = json.loads((model_dir / "config.json").read_text())
    return int(cfg.get("max_position_embeddings") or 4096)


def run_eval(cfg: EvalConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate `cfg.model` on every benchmark; returns the JSON-able result."""
    from transformers import AutoTokenizer

    from limr.rollout.config import EngineConfig
    from limr.rollout.engine import RolloutEngine
    from limr.rollout.types import SamplingSpec

    model_dir = Path(cfg.model)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"--model {model_dir}: not a HuggingFace model directory (no config.json)")
    benches = [load_benchmark(name, cfg.data_dir, cfg.limit, cfg.seed, cfg.protocol) for name in cfg.benchmarks]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = {b.name: [render_prompt(q.question, tokenizer, cfg.template) for q in b.questions] for b in benches}
    longest = max(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for ps in prompts.values() for p in ps)
    max_pos = _max_positions(model_dir)
    deviations = _deviations(cfg, benches)
    if cfg.max_tokens is None:  # small models (the tiny one has 2,048 positions) get what their context leaves
        wanted = max(b.protocol.max_tokens for b in benches)
        cfg = cfg.model_copy(update={"max_tokens": max(1, min(wanted, max_pos - longest))})
        if cfg.max_tokens < wanted:
            deviations.append(f"max_tokens {cfg.max_tokens} (the model's {max_pos} positions leave no more)")
    if longest + cfg.max_tokens > max_pos:
        raise ValueError(
            f"longest prompt ({longest} tokens) + --max-tokens {cfg.max_tokens} exceeds the model's "
            f"{max_pos} positions; lower --max-tokens"
        )

    import torch

    kv_cache_gib = cfg.kv_cache_gib if cfg.kv_cache_gib is not None else (None if torch.cuda.is_available() else 1.0)
    t0 = time.monotonic()
    engine = RolloutEngine(
        EngineConfig(
            model=str(model_dir),
            dtype=cfg.dtype,
            max_model_len=longest + cfg.max_tokens,
            kv_cache_gib=kv_cache_gib,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            tensor_parallel_size=cfg.tensor_parallel_size,
            seed=cfg.seed,
            enable_prefix_caching=True,
        )
    )
    load_s = time.monotonic() - t0
    results: dict[str, Any] = {}
    workers = {"num_workers": cfg.reward_workers} if cfg.reward_workers else {}
    pool_cfg = RewardPoolConfig(timeout_s=cfg.reward_timeout_s, **workers)
    try:
        with RewardPool(pool_cfg) as pool:
            for bench in benches:
                p = bench.protocol
                # A seeded request: the engine gives each prompt its own stream (seed mixed with the prompt's
                # index), so samples do not depend on how vLLM batches them and a rerun draws the same ones.
                # (On CPU the engine turns chunked prefill off, which seeded requests need there: EngineConfig.)
                spec = SamplingSpec(
                    n=p.n, temperature=p.temperature, top_p=p.top_p, max_tokens=cfg.max_tokens, seed=cfg.seed,
                    logprobs=False,
                )  # fmt: skip
                t1 = time.monotonic()
                gen = engine.generate(prompts[bench.name], spec)
                gen_s = time.monotonic() - t1
                results[bench.name] = _score(bench, gen.results, pool, gen_s, cfg.max_tokens)
                if progress:
                    r = results[bench.name]
                    print(f"{bench.name}: accuracy {r['accuracy']:.3f} over {r['n_questions']} questions", flush=True)
    finally:
        engine.close()
    return {
        "model": str(model_dir),
        "protocol": cfg.protocol,
        "deviations_from_protocol": deviations,
        "settings": {
            **json.loads(cfg.model_dump_json()),
            "protocols": {b.name: vars(b.protocol) for b in benches},
            "sources": {b.name: b.source for b in benches},
        },
        "accuracy": {name: r["accuracy"] for name, r in results.items()},
        "benchmarks": results,
        "timing": {"engine_load_s": round(load_s, 2), "total_s": round(time.monotonic() - t0, 2)},
    }


def _deviations(cfg: EvalConfig, benches: list[Benchmark]) -> list[str]:
    """Every way this run departs from its protocol (an empty list: the protocol exactly)."""
    out = []
    if cfg.limit is not None:
        out.append(f"limit {cfg.limit}: only the first {cfg.limit} questions of each benchmark")
    if cfg.max_tokens is not None and any(cfg.max_tokens != b.protocol.max_tokens for b in benches):
        out.append(f"max_tokens {cfg.max_tokens} (--max-tokens) instead of the protocol's")
    if cfg.template.value != "auto":
        out.append(f"template {cfg.template.value} (the protocol renders the tokenizer's chat template)")
    return out


def _checked_texts(bench: Benchmark, samples: list) -> tuple[list[str], list[bool]]:
    """What the reward pool grades: under last_box only the last box, finished or not (the released eval.py)."""
    if bench.protocol.answer_check == "reward":
        return [s.text for _, s in samples], [not s.truncated for _, s in samples]
    texts = []
    for _, s in samples:
        box = last_boxed(s.text)
        texts.append("\\boxed{" + box + "}" if box and box.strip() else s.text)  # no box: graded as no_box
    return texts, [True] * len(samples)


def _score(bench: Benchmark, prompt_results: list, pool: RewardPool, gen_s: float, max_tokens: int) -> dict[str, Any]:
    samples = [(qi, s) for qi, pr in enumerate(prompt_results) for s in pr.samples]
    golds = [bench.questions[qi].answer for qi, _ in samples]
    texts, finished = _checked_texts(bench, samples)
    grades = pool.grade(texts, golds, finished)
    per_q: list[dict[str, Any]] = [
        {"id": q.id, "answer": q.answer, "correct": [], "reasons": [], "predicted": [], "responses": []}
        for q in bench.questions
    ]
    for (qi, s), g in zip(samples, grades, strict=True):
        rec = per_q[qi]
        rec["correct"].append(g.score == 1.0)
        rec["reasons"].append(str(g.reason))
        rec["predicted"].append(g.answer)
        rec["responses"].append(s.text)
    for rec in per_q:
        rec["accuracy"] = sum(rec["correct"]) / len(rec["correct"])
    n_tokens = sum(len(s.token_ids) for _, s in samples)
    return {
        "accuracy": sum(r["accuracy"] for r in per_q) / len(per_q),
        "n_questions": len(per_q),
        "samples_per_question": bench.protocol.n,
        "temperature": bench.protocol.temperature,
        "top_p": bench.protocol.top_p,
        "max_tokens": max_tokens,
        "answer_check": bench.protocol.answer_check,
        "format_error_rate": sum(g.score == -1.0 for g in grades) / len(grades),
        "truncated_rate": sum(s.truncated for _, s in samples) / len(samples),
        "generated_tokens": n_tokens,
        "generate_s": round(gen_s, 2),
        "questions": per_q,
    }


def write_result(result: dict[str, Any], path: str | Path) -> Path:
    """Write the result JSON atomically (never a partial file)."""
    path = Path(path)
    with atomic_file(path) as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return path
