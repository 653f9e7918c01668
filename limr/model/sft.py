"""Supervised warm start on synthetic worked solutions, so RL starts from a model that answers in format.

A freshly initialised model never writes `\\boxed{}`, so every reward is -1.0 and PPO has nothing to
learn from. A few minutes of SFT on `limr.tasks.synthetic` solutions teaches the format and the easy
levels; the hard levels stay mostly wrong, which is what RL needs: rewards of both signs.

Prompts are rendered exactly as the learner and `limr eval` render them (`limr.data.templates`, `auto`),
and the loss covers only the response tokens (solution + end-of-turn token).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from limr.console import progress
from limr.data.templates import Template, render_prompt
from limr.model.save import save_model_dir
from limr.tasks.synthetic import LEVELS, SyntheticConfig, SyntheticProblem, column_solution, generate, make_splits
from limr.tasks.synthetic import train_seed as _train_seed

IGNORE = -100  # label of prompt and padding tokens (no loss)


class SFTConfig(BaseModel):
    """One supervised warm-start run."""

    model: Path = Field(description="Model directory to start from (HF format, e.g. from `limr model init-tiny`).")
    out: Path = Field(description="Directory to write the fine-tuned model to (must not exist or be empty).")
    steps: int = Field(300, ge=1, description="Optimizer steps.")
    batch_size: int = Field(32, ge=1, description="Sequences per step.")
    lr: float = Field(3e-3, gt=0, description="Peak learning rate (linear warm-up, cosine decay to 10%).")
    warmup_steps: int = Field(20, ge=0, description="Linear warm-up steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    n_train: int = Field(4000, ge=1, description="Synthetic training problems (held-out benchmark excluded).")
    levels: tuple[int, ...] = Field(LEVELS, min_length=1, description="Synthetic difficulty levels to train on.")
    column_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of addition problems shown worked digit by digit (the rest in one line); see "
        "limr.tasks.synthetic.column_solution.",
    )
    skills: dict[str, int] = Field(
        default_factory=dict,
        description="Extra problems of named skills (limr.tasks.skills), e.g. {'add-2x2': 300}: a wider skill "
        "the warm start should half-know. Drawn from their own seed stream; additions are worked by column at "
        "`column_fraction` like the rest.",
    )
    seed: int = Field(0, description="Seed of the data stream and of batch order.")
    template: Template = Field(Template.AUTO, description="Prompt template (must match the one RL and eval use).")
    max_len: int = Field(512, ge=16, description="Longest prompt + response in tokens; longer examples are dropped.")
    threads: int = Field(0, ge=0, description="torch CPU threads (0: torch's default).")
    eval_n: int = Field(100, ge=0, description="Held-out problems to score greedily at the end (0: skip).")
    progress: bool = Field(True, description="Show a progress bar.")

    @field_validator("skills")
    @classmethod
    def _known_skills(cls, v: dict[str, int]) -> dict[str, int]:
        from limr.tasks.skills import check_skill_counts

        return check_skill_counts(v, "skills")


@dataclass
class SFTResult:
    out: Path
    steps: int
    first_loss: float  # response-token loss of the first step (~ln(vocab) for a fresh model)
    final_loss: float  # mean response-token loss over the last 10 steps
    seconds: float
    accuracy: float | None  # greedy accuracy on `eval_n` held-out synthetic problems
    eval_n: int

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "out": str(self.out)}


def sft_problems(
    n_train: int,
    seed: int,
    levels: tuple[int, ...],
    skills: dict[str, int] | None = None,
    field: str = "skills",
) -> list[SyntheticProblem]:
    """The problems a warm start with these settings trains on (so evaluations can exclude them).

    `skills`: extra problems per named skill, after the `n_train` level problems (so adding them leaves those
    unchanged), from a stream of their own, distinct from them and from the benchmark. `field` is the setting
    that gave `skills` (SFTConfig's `skills`, a study's `warm_start.sft_skills`), named when it asks for too many.
    """
    # Never train on a benchmark: exclude the held-out split `limr eval --benchmarks synthetic` uses (all
    # levels, seed 0 and this run's seed), whatever subset of levels this run trains on.
    benchmark = {p.prompt for s in {0, seed} for p in make_splits(SyntheticConfig(seed=s, n_train=0))[1]}
    base = generate(n_train, seed=_train_seed(seed), levels=levels, exclude=benchmark)
    if not skills:
        return base
    from limr.tasks.skills import draw_skills
    from limr.tasks.synthetic import derived_seed

    extra_seed = derived_seed(seed, "sft-skills")
    taken = benchmark | {p.prompt for p in base}
    why = "the warm start's level problems and the synthetic benchmark"
    return base + draw_skills(dict(skills), extra_seed, taken, field, why)


def build_examples(tokenizer, cfg: SFTConfig) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per training problem; labels mask the prompt."""
    train = sft_problems(cfg.n_train, cfg.seed, cfg.levels, cfg.skills)
    examples = []
    route = random.Random(cfg.seed)  # which additions are shown worked by column: seeded, like the data
    for p in train:
        prompt = render_prompt(p.prompt, tokenizer, cfg.template)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        sep = "" if prompt[-1:].isspace() else " "  # chat prompts end in a newline, the plain one in "Answer:"
        solution = p.solution
        if cfg.column_fraction and route.random() < cfg.column_fraction:
            solution = column_solution(p) or solution
        r_ids = tokenizer(sep + solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(p_ids) + len(r_ids) <= cfg.max_len:
            examples.append((p_ids + r_ids, [IGNORE] * len(p_ids) + r_ids))
    if not examples:
        raise ValueError(f"no training example fits max_len={cfg.max_len}")
    return examples


def _collate(batch, pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
    for row, (x, y) in enumerate(batch):
        ids[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
        mask[row, : len(x)] = 1
    return ids, labels, mask


def _lr_at(step: int, cfg: SFTConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def greedy_accuracy(model, tokenizer, n: int, seed: int = 0, template: Template = Template.AUTO, batch: int = 50):
    """Greedy accuracy (transformers generate) on the first `n` held-out synthetic problems.

    A quick in-process check; `limr eval --benchmarks synthetic` is the reference measurement (vLLM).
    """
    import torch

    from limr.reward import score_batch

    _, test = make_splits(SyntheticConfig(seed=seed, n_train=0, n_test=max(n, 1)))
    test = test[:n]
    tokenizer.padding_side = "left"
    responses: list[str] = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(test), batch):
            chunk = test[i : i + batch]
            enc = tokenizer(
                [render_prompt(p.prompt, tokenizer, template) for p in chunk],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
            out = model.generate(**enc, max_new_tokens=96, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            responses += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    scores = score_batch(responses, [p.answer for p in test])
    return sum(s == 1.0 for s in scores) / max(1, len(scores))


def run_sft(cfg: SFTConfig) -> SFTResult:
    """Fine-tune `cfg.model` on synthetic solutions and save it to `cfg.out` (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32)
    examples = build_examples(tokenizer, cfg)
    rng = random.Random(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))

    model.train()
    t0 = time.monotonic()
    order: list[int] = []
    losses: list[float] = []
    with progress("SFT warm start", cfg.steps, cfg.progress) as bar:
        for step in range(cfg.steps):
            if len(order) < cfg.batch_size:
                fresh = list(range(len(examples)))
                rng.shuffle(fresh)
                order += fresh
            batch = [examples[i] for i in order[: cfg.batch_size]]
            del order[: cfg.batch_size]
            ids, labels, mask = _collate(batch, tokenizer.pad_token_id)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, cfg)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            bar.advance(status=f"loss {losses[-1]:.3f} lr {_lr_at(step, cfg):.1e}")
    seconds = time.monotonic() - t0

    accuracy = greedy_accuracy(model, tokenizer, cfg.eval_n, cfg.seed, cfg.template) if cfg.eval_n else None
    result = SFTResult(out, cfg.steps, losses[0], sum(losses[-10:]) / len(losses[-10:]), seconds, accuracy, cfg.eval_n)

    tokenizer.padding_side = "right"
    meta = {"config": json.loads(cfg.model_dump_json()), "result": result.to_dict()}
    save_model_dir(out, model, tokenizer, "limr_sft.json", meta)
    return result
