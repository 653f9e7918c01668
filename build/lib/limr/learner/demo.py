"""The training half of `limr demo`: tiny model -> SFT warm start -> PPO on a synthetic pool -> reward events.

Everything is built under one output directory from seeds (no downloads), then trained with the same
loop as `limr train` (Ray Train + the rollout service, or --local), so the demo exercises the real system.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from limr.learner.config import LearnerConfig

log = logging.getLogger("limr.learner")


class DemoTrainingOptions(BaseModel):
    """Sizes of the demo's training run (defaults: a few minutes on 2 CPU cores)."""

    prompts: int = Field(128, ge=8, description="Synthetic train prompts (the pool LIM scores).")
    eval_prompts: int = Field(200, ge=0, description="Held-out synthetic problems for greedy accuracy.")
    # Level 1 (small additions): the 1M-parameter model's warm start is ~38% greedy with pass@8 ~73% there,
    # so RL has signal both ways; on levels 2+ it stays under 10% and training reward stays flat.
    levels: tuple[int, ...] = Field((1,), description="Synthetic difficulty levels.")
    epochs: int = Field(6, ge=2, description="Epochs over the pool (LIM needs >= 2).")
    samples: int = Field(16, ge=2, description="Samples per prompt per epoch.")
    rollout_batch: int = Field(16, ge=1, description="Prompts per RL step.")
    sft_steps: int = Field(800, ge=1, description="Supervised warm-start steps.")
    sft_problems: int = Field(600, ge=1, description="Synthetic problems the warm start trains on.")
    # A warm start that mostly answers in one line and sometimes works the addition column by column: the
    # column route is right about twice as often, RL finds that out and moves to it, on held-out problems too.
    sft_column_fraction: float = Field(0.2, ge=0, le=1, description="Share of SFT additions worked by column.")
    max_new_tokens: int = Field(48, ge=8, description="Generation budget per sample.")
    workers: int = Field(1, ge=1, description="Ray Train workers.")
    local: bool = Field(False, description="One process with HF sampling instead of Ray Train + vLLM service.")
    seed: int = Field(0, description="Seeds model, data and training.")
    model: Path | None = Field(None, description="Warm-started actor to train (skips init + SFT).")


@dataclass
class DemoTraining:
    run_id: str
    pool: Path
    model: Path
    groups: dict[str, str]  # prompt id -> "level N"
    metrics: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)


def demo_config(opts: DemoTrainingOptions, model: Path, pool: Path, bench: Path | None, store: str, run_id: str):
    n = opts.samples
    samples_per_step = opts.rollout_batch * n
    return LearnerConfig.model_validate(
        {
            "name": "demo",
            "model": {"actor": str(model)},
            "data": {
                "prompts": str(pool),
                "eval_prompts": str(bench) if bench else None,
                "eval_limit": max(1, opts.eval_prompts),
                "max_prompt_tokens": 256,
            },
            "rollout": {
                "samples_per_prompt": n,
                "temperature": 1.0,
                "max_new_tokens": opts.max_new_tokens,
                "backend": "local" if opts.local else "service",
                "service": {"engine": {"kv_cache_gib": 0.5, "max_model_len": 512}, "num_cpus": 1},
                "export_every": 1,  # a few MB per step here: replicas that restart serve the latest weights
            },
            # As configs/tiny-cpu.yaml (measured there): GRPO, lr 5e-5; higher rates drift off (KL ~0.1/token).
            "algorithm": {"estimator": "grpo", "kl_coef": 0.01},
            "optim": {"actor_lr": 5e-5, "critic_lr": 1e-3, "warmup_steps": 4},
            "batch": {
                "rollout_batch_size": opts.rollout_batch,
                "train_batch_size": max(opts.workers, samples_per_step // 4),  # 4 optimizer steps per RL step
                "micro_batch_size": 32,
            },
            "trainer": {"num_workers": opts.workers, "cpus_per_worker": 1, "torch_threads": 1},
            "run": {
                "run_id": run_id,
                "store": store,
                "seed": opts.seed,
                "epochs": opts.epochs,
                "checkpoint_every": 0,
                "eval_every": 0,
            },
            "metrics": {"progress": True},
        }
    )


def build_warm_start(
    models: Path, seed: int, steps: int, problems: int, levels: tuple[int, ...], column_fraction: float
) -> Path:
    """`models/tiny` (init) -> `models/tiny-sft` (SFT warm start), each built only if missing; returns the latter."""
    from limr.model.sft import SFTConfig, run_sft
    from limr.model.tiny import init_tiny_model

    models = models.resolve()
    tiny, sft = models / "tiny", models / "tiny-sft"
    if not (sft / "config.json").exists():
        if not (tiny / "config.json").exists():
            init_tiny_model(tiny, seed=seed)
        log.info("SFT warm start: %d steps", steps)
        sft_cfg = SFTConfig(
            model=tiny, out=sft, steps=steps, n_train=problems, levels=levels, column_fraction=column_fraction,
            seed=seed, eval_n=0, threads=1,
        )  # fmt: skip
        run_sft(sft_cfg)
    return sft


def train_demo_run(out: Path, store: str, run_id: str, opts: DemoTrainingOptions) -> DemoTraining:
    """Build model and data under `out`, warm-start, run PPO; returns the run and its final metrics."""
    from limr.tasks.synthetic import SyntheticConfig, make_splits, write_jsonl

    out = out.resolve()  # Ray workers and Serve replicas run in other working directories
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    if opts.model:
        sft = opts.model.resolve()
    else:
        sft = build_warm_start(
            out / "models", opts.seed, opts.sft_steps, opts.sft_problems, opts.levels, opts.sft_column_fraction
        )
    seconds["sft"] = time.perf_counter() - t

    train, bench = make_splits(
        SyntheticConfig(seed=opts.seed, n_train=opts.prompts, n_test=opts.eval_prompts, levels=opts.levels)
    )
    pool = write_jsonl(train, out / "data" / "train.jsonl")
    bench_path = write_jsonl(bench, out / "data" / "synthetic.jsonl") if bench else None
    groups = {p.id: f"level {p.level}" for p in train}

    cfg = demo_config(opts, sft, pool, bench_path, store, run_id)
    t = time.perf_counter()
    if opts.local:
        from limr.learner.worker import run_local

        metrics = run_local(cfg)
    else:
        from limr.learner.launch import run_with_ray

        metrics = run_with_ray(cfg)
    seconds["ppo"] = time.perf_counter() - t
    return DemoTraining(run_id, pool, sft, groups, metrics, seconds)
