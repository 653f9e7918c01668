"""The plan of a config (learner, experiment or the chart's values) and the problems that make it impossible or
wasteful: what `limr plan` prints and what `limr train` / `limr experiment` check before they start.

A problem is something the run cannot survive or should not be started with (it runs out of GPU memory, the
store fills, the deadline ends it, it asks for GPUs the pool does not have, it evaluates on a set that is not
there, it spends most of each step writing checkpoints). A note is what the plan could not check and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limr.learner.config import LearnerConfig
from limr.plan.estimate import CPU, DEFAULT_ASSUMPTIONS, H100, Assumptions, Hardware, RunEstimate, estimate
from limr.plan.shape import ModelShape, from_hf_config, model_shape

WASTEFUL_CHECKPOINT_SHARE = 0.25  # checkpoint uploads above this share of the step time are a problem
MEMORY_HEADROOM = 0.95  # a learner peak above 95% of the GPU's memory fragments into an OOM


@dataclass
class Limits:
    """What the run must fit in; None: not checked."""

    gpus: float | None = None  # GPUs of the cluster the run starts in
    store_bytes: int | None = None  # the object store's volume
    deadline_s: float | None = None  # the RayJob's activeDeadlineSeconds
    hardware: Hardware | None = None  # None: H100 when trainer.use_gpu, else the CPU profile
    check_paths: bool = False  # local files the config names must exist (limr train checks them at start)


@dataclass
class Plan:
    source: str
    kind: str  # learner | experiment | chart
    runs: int  # learner runs the config starts (an experiment: arms x seeds)
    config: LearnerConfig | None
    estimate: RunEstimate | None
    shape: ModelShape | None
    hardware: Hardware
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float | None:
        if self.estimate is None or self.estimate.run_seconds is None:
            return None
        return self.estimate.run_seconds * self.runs

    def as_dict(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "source": self.source,
            "kind": self.kind,
            "runs": self.runs,
            "hardware": self.hardware.name,
            "model": None if self.shape is None else {
                "source": self.shape.source, "actor_params": self.shape.causal_lm_params,
                "critic_params": self.shape.critic_params,
            },
            "run": None if est is None else est.as_dict(),
            "total_seconds": self.total_seconds,
            "total_gpu_hours": None if est is None or est.gpu_hours is None else est.gpu_hours * self.runs,
            "problems": self.problems,
            "notes": self.notes,
        }  # fmt: skip


def pool_size_of(prompts: str | None, datasets_url: str | None = None) -> int | None:
    """Prompts in a local pool file (the learner's own loader), or None when it is not readable here."""
    if not prompts or "://" in prompts or not Path(prompts).is_file():
        return None
    from limr.data.pool import load_pool

    return len(load_pool(prompts, datasets_url))


def plan_learner(
    cfg: LearnerConfig,
    pool_size: int | None,
    limits: Limits,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    runs: int = 1,
    source: str = "",
    kind: str = "learner",
    shape: ModelShape | None = None,
) -> Plan:
    hw = limits.hardware or (H100 if cfg.trainer.use_gpu else CPU)
    shape = shape or model_shape(cfg.model.actor)
    plan = Plan(source, kind, runs, cfg, None, shape, hw)
    if shape is None:
        plan.notes.append(f"model.actor {cfg.model.actor!r}: no config.json here and not a known model: "
                          "bytes, memory and time not estimated")  # fmt: skip
    if pool_size is None:
        plan.notes.append(f"prompt pool {cfg.data.prompts!r} not readable here: give --prompts FILE or --pool-size N")
    else:
        try:
            plan.estimate = estimate(cfg, pool_size, shape, hw, assumptions)
        except ValueError as e:
            plan.problems.append(f"pool: {e}")
    _check(plan, cfg, limits)
    return plan


def _check(plan: Plan, cfg: LearnerConfig, limits: Limits) -> None:
    est, hw, p = plan.estimate, plan.hardware, plan.problems
    if cfg.run.eval_every and not cfg.data.eval_prompts:
        p.append(f"eval: run.eval_every is {cfg.run.eval_every} but data.eval_prompts is not set")
    for name in ("prompts", "eval_prompts"):
        path = getattr(cfg.data, name)
        if limits.check_paths and path and "://" not in path and not Path(path).exists():
            p.append(f"data.{name}: {path}: no such file")
    needed = cfg.trainer.num_workers * cfg.trainer.use_gpu + (est.rollout_gpus if est else 0)
    if limits.gpus is not None and needed > limits.gpus:
        p.append(f"gpus: the run needs {needed:g} GPUs (trainer.num_workers with use_gpu + the rollout "
                 f"service's replicas x num_gpus), the cluster has {limits.gpus:g}")  # fmt: skip
    if est is None:
        return
    m = est.memory
    if m is not None and cfg.trainer.use_gpu and hw.memory_gib:
        if m.learner_peak > hw.memory_gib * MEMORY_HEADROOM:
            p.append(f"memory: a learner GPU peaks at ~{m.learner_peak:.1f} GiB of {hw.memory_gib:g} "
                     f"({cfg.trainer.strategy}, micro_batch_size {cfg.batch.micro_batch_size})")  # fmt: skip
        if m.vllm_full_sequences is not None and m.vllm_full_sequences < 1:
            p.append(f"memory: a rollout engine's KV cache ({m.vllm_kv_cache:.1f} GiB) cannot hold one sequence "
                     "of max_prompt_tokens + max_new_tokens")  # fmt: skip
    if limits.store_bytes is not None and est.peak_store_bytes is not None:
        # runs follow one another: the finished ones leave what they retain, the one running peaks
        need = est.peak_store_bytes + (plan.runs - 1) * (est.retained_store_bytes or 0)
        if need > limits.store_bytes:
            p.append(f"store: {plan.runs} run(s) peak at {need / 1e9:,.0f} GB (run.keep_checkpoints "
                     f"{cfg.run.keep_checkpoints} + one being written, {est.checkpoint_bytes / 1e9:,.0f} GB each, "  # type: ignore[operator]
                     f"plus exports and events); the store holds {limits.store_bytes / 1e9:,.0f} GB")  # fmt: skip
    total = plan.total_seconds
    if limits.deadline_s and total is not None and total > limits.deadline_s:
        p.append(f"deadline: {plan.runs} run(s) take ~{total / 86400:.1f} days, the deadline is "
                 f"{limits.deadline_s / 86400:.1f} days")  # fmt: skip
    steps = est.step_seconds  # GPU-hours are what slow checkpoints waste; a CPU run's step is all compute
    if cfg.trainer.use_gpu and steps and steps.get("checkpoint", 0) > WASTEFUL_CHECKPOINT_SHARE * sum(steps.values()):
        p.append(f"checkpoint: run.checkpoint_every {cfg.run.checkpoint_every} spends "
                 f"{steps['checkpoint'] / sum(steps.values()):.0%} of every step uploading checkpoints of "
                 f"{est.checkpoint_bytes / 1e9:.0f} GB: checkpoint less often")  # type: ignore[operator]  # fmt: skip


def start_check(cfg: LearnerConfig) -> list[str]:
    """The problems `limr train` refuses to start with: the plan's checks with what is known at start (the config,
    the model's shape, the pool and the files it names; the cluster's limits are the chart's to check)."""
    return plan_learner(cfg, pool_size_of(cfg.data.prompts, cfg.data.datasets_url), Limits(check_paths=True)).problems


def tiny_shape() -> ModelShape:
    """The shape `limr model init-tiny` writes with its defaults (the experiment's own warm start)."""
    from limr.model.tiny import TinyModelConfig, build_tokenizer

    t = TinyModelConfig()
    vocab = -(-len(build_tokenizer()) // t.vocab_multiple) * t.vocab_multiple
    cfg = {
        "hidden_size": t.hidden_size, "num_hidden_layers": t.num_layers, "num_attention_heads": t.num_heads,
        "num_key_value_heads": t.num_heads, "head_dim": t.head_dim, "intermediate_size": t.intermediate_size,
        "vocab_size": vocab, "tie_word_embeddings": True,
    }  # fmt: skip
    return from_hf_config(cfg, "limr model init-tiny defaults")
