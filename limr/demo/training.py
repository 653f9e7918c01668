"""The training half of `limr demo`: the study's warm start and pool, smaller -> GRPO -> reward events.

Warm start and pool come from the study's own code (limr.experiment.inputs) with its settings, so the demo runs
in the paper's regime (the pool's average curve near or above 0.5); everything is built under one output
directory from seeds (no downloads), then trained with the same loop as `limr train` (Ray Train + the rollout
service, or --local), so the demo exercises the real system.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from limr.experiment.config import PoolSection, WarmStart
from limr.learner.config import LearnerConfig
from limr.tasks.skills import SkillMix

# The study's pool design (configs/experiment-tiny.yaml, docs/experiment.md): one-digit sums the warm start
# mostly solves, one-digit + two-digit sums it can learn (the held-out skill) and two-digit + one-digit sums out
# of its reach. tests/demo checks that these and the warm start below stay the study's.
STUDY_SHARES: dict[str, float] = {"add-1x1": 0.50, "add-1x2": 0.40, "add-2x1": 0.10}
HELD_OUT_SHARES: dict[str, float] = {"add-1x2": 1.0}


class DemoTrainingOptions(BaseModel):
    """Sizes of the demo's training run: the study's warm start and pool mix, a smaller pool (about 10 minutes on
    2 idle CPU cores, README)."""

    prompts: int = Field(100, ge=8, description="Prompts in the pool (the study's skill shares).")
    eval_prompts: int = Field(200, ge=0, description="Held-out one-digit + two-digit sums (not in SFT data or pool).")
    epochs: int = Field(5, ge=2, description="Epochs over the pool (LIM needs >= 2).")
    samples: int = Field(8, ge=2, description="Samples per prompt per epoch.")
    rollout_batch: int = Field(20, ge=1, description="Prompts per RL step.")
    # The study's warm start: 940 SFT steps put the one-digit sums at ~0.75 of samples solved, so the pool's
    # average curve starts near 0.5, the paper's regime; 800 leave it below 0.4, where LIM keeps the hard prompts.
    sft_steps: int = Field(940, ge=1, description="Supervised warm-start steps.")
    sft_problems: int = Field(600, ge=1, description="Synthetic level-1 problems the warm start trains on.")
    # A warm start that mostly answers in one line and sometimes works the addition column by column: the
    # column route is right about twice as often, RL finds that out and moves to it, on held-out problems too.
    sft_column_fraction: float = Field(0.2, ge=0, le=1, description="Share of SFT additions worked by column.")
    max_new_tokens: int = Field(48, ge=8, description="Generation budget per sample.")
    workers: int = Field(1, ge=1, description="Ray Train workers.")
    local: bool = Field(False, description="One process with HF sampling instead of Ray Train + vLLM service.")
    seed: int = Field(0, description="Seed of the RL run (the warm start and the pool are the study's, seed 0).")
    model: Path | None = Field(None, description="Warm-started actor to train (skips init + SFT).")

    def warm_start(self) -> WarmStart:
        return WarmStart(
            model=str(self.model) if self.model else None, sft_steps=self.sft_steps, sft_problems=self.sft_problems,
            sft_levels=(1,), sft_column_fraction=self.sft_column_fraction, seed=0,
        )  # fmt: skip

    def pool(self) -> PoolSection:
        mix = SkillMix(
            size=self.prompts, held_out=self.eval_prompts, shares=STUDY_SHARES, held_out_shares=HELD_OUT_SHARES, seed=0
        )
        return PoolSection(mix=mix)


@dataclass
class DemoTraining:
    run_id: str
    pool: Path
    model: Path
    groups: dict[str, str]  # prompt id -> skill (add-1x1, ...)
    metrics: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)


def demo_config(
    opts: DemoTrainingOptions, model: Path, pool: Path, held_out: Path, store: str, run_id: str
) -> LearnerConfig:
    n = opts.samples
    samples_per_step = opts.rollout_batch * n
    return LearnerConfig.model_validate(
        {
            "name": "demo",
            "model": {"actor": str(model)},
            "data": {
                "prompts": str(pool),
                "eval_prompts": str(held_out) if opts.eval_prompts else None,
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
                "micro_batch_size": max(opts.workers, samples_per_step // 4),
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


def train_demo_run(out: Path, store: str, run_id: str, opts: DemoTrainingOptions) -> DemoTraining:
    """Build the warm start and the pool under `out` as the study does, run GRPO; returns the run and its metrics."""
    from limr.experiment.inputs import prepare_inputs

    out = out.resolve()  # Ray workers and Serve replicas run in other working directories
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    inputs = prepare_inputs(opts.pool(), opts.warm_start(), out)
    seconds["sft"] = time.perf_counter() - t
    pool_ids = {json.loads(line)["id"] for line in inputs.pool.read_text().splitlines() if line.strip()}
    groups = {pid: skill for pid, skill in inputs.groups.items() if pid in pool_ids}

    cfg = demo_config(opts, inputs.model, inputs.pool, inputs.held_out, store, run_id)
    t = time.perf_counter()
    if opts.local:
        from limr.learner.worker import run_local

        metrics = run_local(cfg)
    else:
        from limr.learner.launch import run_with_ray

        metrics = run_with_ray(cfg)
    seconds["rl"] = time.perf_counter() - t
    return DemoTraining(run_id, inputs.pool, inputs.model, groups, metrics, seconds)
