"""The learner's one typed config (YAML -> pydantic), with the batch vocabulary and its divisibility checks.

Batch vocabulary, used everywhere in limr.learner:
  prompts_per_step   rollout_batch_size prompts are drawn per step (the last step of an epoch may have fewer);
  samples_per_step   prompts_per_step * samples_per_prompt rollouts are generated, scored and trained on;
  train_batch_size   samples per optimizer step, global over all workers (the paper: 256);
  micro_batch_size   samples per forward/backward on one worker (gradient accumulation fills the rest).
An epoch is one pass over the prompt pool in a seeded, shuffled order: every prompt gets
samples_per_prompt samples per epoch, so LIM sees every prompt once per epoch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunSection(_Section):
    run_id: str | None = Field(None, description="Run id in the store; default: '<config name>-<utc time>'.")
    store: str | None = Field(None, description="Object store URI for events and checkpoints; default LIMR_STORE.")
    seed: int = Field(42, description="Seeds the data order, sampling and initialisation.")
    epochs: int = Field(1, ge=1, description="Passes over the prompt pool.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (the whole run counts).")
    checkpoint_every: int = Field(0, ge=0, description="Checkpoint to the store every K steps (0: only at the end).")
    keep_checkpoints: int = Field(
        2,
        ge=0,
        description="Checkpoints kept in the store: older ones are deleted once a newer one is complete (its "
        "pointer written); never the one latest.json names (0: keep all).",
    )
    eval_every: int = Field(0, ge=0, description="Greedy accuracy on data.eval_prompts every K steps (0: start+end).")
    output_dir: str | None = Field(None, description="Also save the final actor (HF format) to this local dir.")


class ModelSection(_Section):
    actor: str = Field(description="HF model directory (or hub name where the hub is reachable) of the policy.")
    critic: str | None = Field(None, description="Critic backbone; default: the actor's weights plus a value head.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32",
        description="Compute dtype of actor, critic and reference, and what weight sync and exports send; trained "
        "weights and AdamW state stay float32 (master weights), gradients are reduced in float32 "
        "(limr.learner.precision); float16 adds loss scaling.",
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory in actor and critic.")


class DataSection(_Section):
    prompts: str | None = Field(
        None,
        description="Prompt pool (.json/.jsonl/.parquet, s3://, or dataset://NAME@VERSION from the dataset API); "
        "--prompts overrides it.",
    )
    datasets_url: str | None = Field(
        None, description="Dataset API that resolves dataset://NAME@VERSION (default: $LIMR_DATASETS_URL)."
    )
    eval_prompts: str | None = Field(None, description="Held-out prompts for greedy accuracy (optional).")
    eval_limit: int = Field(200, ge=1, description="Evaluate on at most this many held-out prompts.")
    answer_field: str = Field("answer", description="Field of a record holding its reference answer.")
    template: Literal["auto", "chat", "plain"] | None = Field(
        "auto", description="limr.data.templates: auto (chat if the tokenizer has one), chat, plain; None: raw text."
    )
    max_prompt_tokens: int = Field(1024, ge=1, description="Longer prompts are truncated from the left.")


class RolloutSection(_Section):
    samples_per_prompt: int = Field(8, ge=1, description="n samples per prompt per epoch (paper: 8).")
    temperature: float = Field(1.2, ge=0.0, description="Sampling temperature (paper: 1.2).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling.")
    max_new_tokens: int = Field(3072, ge=1, description="Generation budget per sample (paper: 3,072).")
    backend: Literal["service", "local"] = Field(
        "service", description="service: the Ray Serve rollout service (vLLM); local: HF generate in the worker."
    )
    app_name: str | None = Field(None, description="Use this running rollout Serve app instead of starting one.")
    service: dict[str, Any] = Field(
        default_factory=dict, description="RolloutArgs overrides for the service a run starts (engine, replicas)."
    )
    retries: int = Field(
        3,
        ge=0,
        description="Times a step's rollouts are retried when the service fails (a replica or its node lost) or "
        "serves other weights than the learner's latest (a restarted replica): weights are sent again to the "
        "replicas alive then, and the step generates again; nothing of the failed attempt is kept.",
    )
    # Why not every step: an export writes the whole actor to the store (~15 GB per step for a 7B model in
    # bfloat16, about a minute of the learner's time at a few hundred MB/s), and all it buys is how far behind a
    # replica that starts mid-run begins; it joins the transfer group at the next sync anyway, and the learner
    # never trains on rollouts of another version (it retries the step). Every 10 syncs bounds that lag to 10
    # versions for <~10% of a 7B step's time. The demo and tests export every sync.
    export_every: int = Field(
        10,
        ge=0,
        description="Export the actor to the run's store every N weight syncs (the first and the last included), "
        "so a rollout replica that starts or restarts mid-run loads that version instead of the base model "
        "(0: never).",
    )


class AlgorithmSection(_Section):
    estimator: Literal["gae", "grpo"] = Field("gae", description="gae: PPO with a critic; grpo: group advantages.")
    gamma: float = Field(1.0, ge=0.0, le=1.0, description="Discount (paper: 1).")
    lam: float = Field(0.95, ge=0.0, le=1.0, description="GAE lambda (paper: 0.95).")
    clip_eps: float = Field(0.2, gt=0.0, description="Policy ratio clip.")
    value_clip_eps: float | None = Field(0.2, gt=0.0, description="Value clip around the old value (None: off).")
    kl_coef: float = Field(0.01, ge=0.0, description="Per-token KL penalty folded into the reward (paper: 0.01).")
    kl_estimator: Literal["k1", "k2", "k3"] = Field("k1", description="KL estimator for the penalty.")
    kl_target: float | None = Field(None, gt=0.0, description="Adaptive KL target (None: fixed coefficient).")
    kl_horizon: int = Field(10000, ge=1, description="Adaptive KL horizon in samples.")
    normalize_advantages: bool = Field(True, description="Whiten advantages over the global batch.")
    normalize_reward: bool = Field(False, description="Scale scores by a running std before shaping.")
    ppo_epochs: int = Field(1, ge=1, description="Passes over each step's samples.")
    old_logprobs: Literal["recompute", "rollout"] = Field(
        "recompute", description="recompute: learner's own pre-update logprobs; rollout: the engine's."
    )


class OptimSection(_Section):
    actor_lr: float = Field(5e-7, gt=0.0, description="Actor learning rate (paper: 5e-7).")
    critic_lr: float = Field(9e-6, gt=0.0, description="Critic learning rate (paper: 9e-6).")
    warmup_steps: int = Field(0, ge=0, description="Optimizer steps of linear lr warm-up.")
    schedule: Literal["constant", "cosine"] = Field("constant", description="lr after warm-up.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas.")


class BatchSection(_Section):
    rollout_batch_size: int = Field(1024, ge=1, description="Prompts per step (paper: 1,024).")
    train_batch_size: int = Field(256, ge=1, description="Samples per optimizer step, all workers (paper: 256).")
    micro_batch_size: int = Field(4, ge=1, description="Samples per forward/backward on one worker.")


class TrainerSection(_Section):
    num_workers: int = Field(1, ge=1, description="Ray Train workers (data-parallel ranks).")
    use_gpu: bool = Field(False, description="One GPU per worker; NCCL instead of gloo.")
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="fsdp: FSDP2 shards actor and critic per decoder layer (GPU, or CPU with gloo)."
    )
    cpus_per_worker: float = Field(1.0, gt=0.0, description="CPUs reserved per worker.")
    max_failures: int = Field(0, ge=-1, description="Ray Train restarts from the last checkpoint (-1: forever).")
    ray_storage_path: str | None = Field(
        None,
        description="Ray Train storage, which every node must share: a shared directory, an s3:// URI, or 'store' "
        "(under the run in the run's store: shared with nothing to mount; the chart's default). None: a node-local "
        "temp dir (one node only).",
    )
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads per worker (CPU).")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per worker, e.g. {train_pool: 1}: places the workers on the nodes that "
        "advertise them (the chart's training node pool), never on the rollout pool.",
    )


class CurationSection(_Section):
    """Online curation of the step's prompts (the offline one is LIM: train on a curated --prompts subset)."""

    dynamic_sampling: bool = Field(
        False,
        description="DAPO-style dynamic sampling: drop a prompt's group when all its samples agree (filter_metric), "
        "refill from the pool until the step has rollout_batch_size informative groups (or max_rounds is reached).",
    )
    filter_metric: Literal["correct", "reward"] = Field(
        "correct", description="What must vary within a kept group: correctness (DAPO, verl 'acc') or the reward."
    )
    max_rounds: int = Field(
        8, ge=1, description="Generation rounds per step at most; a step still short tops up with dropped groups."
    )
    mode: Literal["full", "early-lim", "greso"] = Field(
        "full",
        description="early-lim: train on the full pool for early_epochs epochs, then on the subset early LIM "
        "predicts (the scorer's provisional version of early_dataset, read through the dataset API) for the "
        "remaining steps of the same run (docs/learner.md). greso: GRESO's pre-rollout skipping of prompts whose "
        "recent groups were all right or all wrong, inside dynamic sampling (which it turns on).",
    )
    greso_target_zero_variance: float = Field(
        0.25, gt=0, lt=1, description="greso: target share of zero-variance groups (1/3 easy, 2/3 hard)."
    )
    greso_p_init: float = Field(0.5, gt=0, le=1, description="greso: initial exploration probability.")
    greso_delta_p: float = Field(0.01, gt=0, le=1, description="greso: step of the exploration probabilities.")
    greso_min_p: float = Field(0.05, ge=0, le=1, description="greso: lowest exploration probability.")
    greso_max_p: float = Field(0.95, ge=0, le=1, description="greso: highest exploration probability.")

    @property
    def dynamic(self) -> bool:
        """Whether steps run dynamic sampling (greso runs inside it)."""
        return self.dynamic_sampling or self.mode == "greso"

    def greso_settings(self):  # -> limr.algo.greso.GresoSettings (imported lazily: config stays dependency-light)
        from limr.algo.greso import GresoSettings

        return GresoSettings(
            self.greso_target_zero_variance, self.greso_p_init, self.greso_delta_p, self.greso_min_p, self.greso_max_p
        )

    early_epochs: int = Field(2, ge=1, description="early-lim: epochs of the full pool before the switch (K).")
    early_dataset: str = Field(
        "{run}-early-lim",
        description="early-lim: dataset the scorer publishes for this run with a policy `early_epochs: K` "
        "({run} is the run id).",
    )
    early_wait_s: float = Field(
        900.0, gt=0, description="early-lim: seconds to wait for the scorer's version before failing the run."
    )


class MetricsSection(_Section):
    port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics port on rank 0 (0: off).")
    progress: bool = Field(True, description="Progress bar with reward/KL/throughput.")
    tracking: str | None = Field(
        None,
        description="Experiment tracker: mlflow[:URI] (a server URL or a local file store, ./mlruns by default)"
        " or tensorboard:DIR; metrics every step, the config, and the LIM plots at the end.",
    )

    @field_validator("tracking")
    @classmethod
    def _known_tracker(cls, v: str | None) -> str | None:
        from limr.tracking import parse_spec

        if v:
            parse_spec(v)  # TrackingError (a ValueError) names what is accepted
        return v or None


class LearnerConfig(_Section):
    """The whole learner config; `derive(pool_size)` computes the numbers that depend on the pool."""

    name: str = Field("limr", description="Config name; prefix of generated run ids.")
    run: RunSection = Field(default_factory=RunSection)
    model: ModelSection
    data: DataSection = Field(default_factory=DataSection)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    algorithm: AlgorithmSection = Field(default_factory=AlgorithmSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    batch: BatchSection = Field(default_factory=BatchSection)
    trainer: TrainerSection = Field(default_factory=TrainerSection)
    curation: CurationSection = Field(default_factory=CurationSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)

    @model_validator(mode="after")
    def _check(self) -> LearnerConfig:
        b, w = self.batch, self.trainer.num_workers
        if b.train_batch_size % w:
            raise ValueError(
                f"batch.train_batch_size ({b.train_batch_size}) must be divisible by "
                f"trainer.num_workers ({w}): every worker takes an equal share of an optimizer step"
            )
        if b.rollout_batch_size < w:
            raise ValueError(f"batch.rollout_batch_size ({b.rollout_batch_size}) must be >= trainer.num_workers ({w})")
        samples = b.rollout_batch_size * self.rollout.samples_per_prompt
        if samples % b.train_batch_size:
            raise ValueError(
                f"batch.rollout_batch_size * rollout.samples_per_prompt ({samples}) must be divisible by "
                f"batch.train_batch_size ({b.train_batch_size}): a step is a whole number of optimizer steps"
            )
        if self.trainer.strategy == "fsdp" and self.model.dtype == "float16":
            raise ValueError(
                "model.dtype float16 needs loss scaling, which limr applies under ddp only: use bfloat16 with fsdp"
            )
        if self.algorithm.estimator == "grpo" and self.rollout.samples_per_prompt < 2:
            raise ValueError("algorithm.estimator 'grpo' needs rollout.samples_per_prompt >= 2")
        c = self.curation
        if c.mode == "early-lim" and c.early_epochs >= self.run.epochs:
            raise ValueError(
                f"curation.early_epochs ({c.early_epochs}) must be below run.epochs ({self.run.epochs}):"
                " early-lim switches pools within the run"
            )
        if c.mode == "early-lim" and c.dynamic_sampling:
            raise ValueError("curation.mode early-lim and curation.dynamic_sampling exclude each other")
        return self

    def derive(self, pool_size: int) -> Derived:
        return Derived.of(self, pool_size)


class Derived(BaseModel):
    """Numbers computed from the config and the pool size, in one place."""

    pool_size: int
    samples_per_step: int  # a full step: rollout_batch_size * samples_per_prompt
    steps_per_epoch: int  # ceil(pool / rollout_batch_size): the last step of an epoch may be smaller
    total_steps: int
    optimizer_steps_per_step: int  # per PPO epoch: samples_per_step / train_batch_size
    per_worker_train_batch: int  # train_batch_size / num_workers
    total_optimizer_steps: int

    @classmethod
    def of(cls, cfg: LearnerConfig, pool_size: int) -> Derived:
        if pool_size < cfg.trainer.num_workers:
            raise ValueError(f"prompt pool has {pool_size} prompt(s), fewer than trainer.num_workers")
        b = cfg.batch
        steps_per_epoch = math.ceil(pool_size / b.rollout_batch_size)
        total = steps_per_epoch * cfg.run.epochs
        if cfg.run.max_steps is not None:
            total = min(total, cfg.run.max_steps)
        samples = min(b.rollout_batch_size, pool_size) * cfg.rollout.samples_per_prompt
        opt_steps = max(1, samples // b.train_batch_size)
        return cls(
            pool_size=pool_size,
            samples_per_step=samples,
            steps_per_epoch=steps_per_epoch,
            total_steps=total,
            optimizer_steps_per_step=opt_steps,
            per_worker_train_batch=b.train_batch_size // cfg.trainer.num_workers,
            total_optimizer_steps=opt_steps * cfg.algorithm.ppo_epochs * total,
        )


class ConfigError(ValueError):
    """A config file that does not validate; the message names the file and the field."""


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """data["a"]["b"] = value for "a.b" (the form of --set overrides), making the parents it lacks."""
    node = data
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LearnerConfig:
    """Read a YAML config, apply dotted overrides ({'run.max_steps': 3}), validate; errors name file and field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    data.setdefault("name", path.stem)
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    # relative model/data paths are relative to the working directory, as on the command line
    try:
        return LearnerConfig.model_validate(data)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msgs.append(f"{path}: field {loc!r}: {err['msg']}")
        raise ConfigError("\n".join(msgs)) from None
