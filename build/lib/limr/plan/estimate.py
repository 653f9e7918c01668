"""What one learner run costs: steps and samples, store bytes, memory per GPU and step time (pure arithmetic).

Counts come from the learner's own code (`LearnerConfig.derive`, i.e. limr.learner.config.Derived), so the plan
and the run agree on steps per epoch by construction. Bytes and FLOPs are formulas over the model's shape
(limr.plan.shape); each constant below says where it comes from. docs/scale.md walks through the formulas for
Qwen2.5-Math-7B.

The time model (per step): generation = samples x mean response / replicas / decode rate, plus the tail of one
longest sample; experience = 2 FLOP per parameter per token over actor, reference (and critic); update = 6 FLOP
per parameter per token (8 with gradient checkpointing's recomputation) over actor (and critic) per PPO epoch,
at the hardware's effective FLOP rate; plus weight sync, and the store writes of checkpoints and exports
amortised over their cadence. Token counts use the padded width the code trains at today: every micro-batch is
as wide as the rank's longest prompt plus longest response (limr.learner.batch.collate), and at temperature 1.2
some sample nearly always runs to max_new_tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from limr.learner.config import Derived, LearnerConfig
from limr.plan.shape import ModelShape

GIB = 2**30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# Persistent bytes per trained parameter: fp32 master (4) + fp32 gradient (4) + AdamW's two fp32 moments (8),
# whatever the compute dtype (limr.learner.precision keeps the masters in fp32).
STATE_BYTES_PER_PARAM = 16
CHECKPOINT_BYTES_PER_PARAM = 12  # master + two moments; gradients are not saved
EVENT_BYTES_PER_SAMPLE = 400  # one reward-event row (ids, reward, lengths) in the store, measured ~300-400 B
CUDA_OVERHEAD_GIB = 3.0  # CUDA context, NCCL buffers, allocator slack (docs/scale.md)
VLLM_ACTIVATION_GIB = 2.5  # vLLM's profiled activation peak incl. CUDA graphs for a 7B model (docs/scale.md)


@dataclass(frozen=True)
class Hardware:
    """One accelerator of the run and the rates the time model uses."""

    name: str
    memory_gib: float | None  # None: not checked (host RAM on CPU)
    train_flops: float  # effective FLOP/s of one learner worker on the HF models (peak x utilisation)
    decode_tokens_per_s_7b: float  # one rollout replica's decode rate for a 7.6e9-parameter model, many sequences
    decode_step_s_7b: float  # one decode step of one sequence at that size (the tail of the longest sample)
    link_bytes_per_s: float  # weight sync, learner -> replicas
    store_bytes_per_s: float  # checkpoint and export uploads from one worker


# H100 SXM: 989 TFLOP/s dense bf16 at 35% utilisation; vLLM decodes 10-15k tokens/s for a 7B model at a few
# hundred running sequences, ~6 ms a step (each step reads the weights at ~2.5 TB/s). Not measured on a GPU yet:
# these are docs/scale.md's assumptions, to be replaced by scripts/gpu-check.sh's figures.
H100 = Hardware("h100", 79.6, 989e12 * 0.35, 12_000.0, 0.006, 20e9, 0.5e9)
# The 2-core CPU, calibrated on benchmarks/results/train_step.json (tiny-cpu, 1.1M parameters, 256 samples of 56
# tokens a step: generation 23.7 s, i.e. ~605 tokens/s, = 0.089 tokens/s at 7.6e9 parameters; experience + update
# 26.8 s over 10 FLOP/parameter/token at 128 tokens wide: 13.7 GFLOP/s); tests/plan/test_estimate.py reproduces
# that step from this profile.
CPU = Hardware("cpu", None, 13.7e9, 0.089, 0.01, 1e9, 0.2e9)
HARDWARE = {"h100": H100, "cpu": CPU}


@dataclass(frozen=True)
class Assumptions:
    mean_prompt_tokens: int | None = None  # None: a quarter of data.max_prompt_tokens (MATH: ~150 of 1,024)
    mean_response_tokens: int | None = None  # None: 26% of max_new_tokens (MATH at T=1.2: ~800 of 3,072)

    def prompt(self, cfg: LearnerConfig) -> int:
        return self.mean_prompt_tokens or max(1, cfg.data.max_prompt_tokens // 4)

    def response(self, cfg: LearnerConfig) -> int:
        return self.mean_response_tokens or max(1, round(cfg.rollout.max_new_tokens * 0.26))


DEFAULT_ASSUMPTIONS = Assumptions()


@dataclass
class Memory:
    """GiB per learner GPU (one worker) and per rollout GPU."""

    actor_state: float
    critic_state: float
    reference: float
    transient: float  # the larger update's gathered weights, activations and logits
    overhead: float
    learner_peak: float
    vllm_budget: float | None  # gpu_memory_utilization x GPU memory
    vllm_kv_cache: float | None
    vllm_full_sequences: int | None  # max_model_len sequences the KV cache holds at once


@dataclass
class RunEstimate:
    derived: Derived
    samples: int  # rollout samples over the run
    token_upper_bound: int  # samples x (max_prompt_tokens + max_new_tokens)
    learner_gpus: int
    rollout_gpus: float
    checkpoint_bytes: int | None
    checkpoints_written: int
    peak_store_bytes: int | None  # retention's checkpoints + one in flight, exports, events
    retained_store_bytes: int | None  # what the run leaves in the store when it ends (kept checkpoints, exports)
    memory: Memory | None
    step_seconds: dict[str, float] = field(default_factory=dict)
    run_seconds: float | None = None
    gpu_hours: float | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["derived"] = self.derived.model_dump()
        return d


def rollout_gpus(cfg: LearnerConfig) -> float:
    """GPUs the run's own rollout service takes (none when it uses a running app or generates locally)."""
    if cfg.rollout.backend != "service" or cfg.rollout.app_name:
        return 0.0
    svc = cfg.rollout.service
    return float(svc.get("num_replicas", 1)) * float(svc.get("num_gpus", 0))


def run_samples(cfg: LearnerConfig, d: Derived) -> int:
    """Rollout samples over the run: every epoch draws the whole pool, the last step of an epoch the rest."""
    per_epoch = [min(cfg.batch.rollout_batch_size, d.pool_size - i * cfg.batch.rollout_batch_size)
                 for i in range(d.steps_per_epoch)]  # fmt: skip
    prompts = sum(per_epoch[i % d.steps_per_epoch] for i in range(d.total_steps))
    return prompts * cfg.rollout.samples_per_prompt


def checkpoint_bytes(cfg: LearnerConfig, shape: ModelShape) -> int:
    params = shape.causal_lm_params + (shape.critic_params if cfg.algorithm.estimator == "gae" else 0)
    return params * CHECKPOINT_BYTES_PER_PARAM


def memory(cfg: LearnerConfig, shape: ModelShape, hw: Hardware) -> Memory:
    """Per-GPU memory of a learner worker by strategy (FSDP shards state over num_workers, DDP replicates it)."""
    n = cfg.trainer.num_workers if cfg.trainer.strategy == "fsdp" else 1
    mixed = cfg.model.dtype != "float32"
    cb = DTYPE_BYTES[cfg.model.dtype]
    gae = cfg.algorithm.estimator == "gae"
    actor, critic = shape.causal_lm_params, shape.critic_params
    actor_state = actor * STATE_BYTES_PER_PARAM / n / GIB
    critic_state = critic * STATE_BYTES_PER_PARAM / n / GIB if gae else 0.0
    reference = actor * cb / GIB  # frozen, in the compute dtype, a full replica on every worker
    # Weights the update holds in the compute dtype: FSDP gathers one decoder layer at a time (two in flight with
    # prefetch); DDP under autocast caches a compute copy of every weight for the forward and backward.
    if cfg.trainer.strategy == "fsdp":
        gathered = (2 * shape.layer_params + shape.vocab * shape.hidden) * cb / GIB
    else:
        gathered = actor * cb / GIB if mixed else 0.0
    mb, width = cfg.batch.micro_batch_size, cfg.data.max_prompt_tokens + cfg.rollout.max_new_tokens
    layer_act = mb * width * (10 * shape.hidden + 2 * shape.intermediate) * cb / GIB  # one layer's forward
    if cfg.model.gradient_checkpointing:
        acts = shape.layers * mb * width * shape.hidden * cb / GIB + layer_act
    else:
        acts = shape.layers * layer_act
    logits = mb * width * shape.vocab * (cb + 4 + 4) / GIB  # logits, fp32 log-softmax and its gradient
    transient = gathered + acts + logits
    peak = actor_state + critic_state + reference + transient + (CUDA_OVERHEAD_GIB if cfg.trainer.use_gpu else 0)
    budget = kv = seqs = None
    if cfg.trainer.use_gpu and hw.memory_gib and rollout_gpus(cfg):
        engine = cfg.rollout.service.get("engine", {}) or {}
        budget = float(engine.get("gpu_memory_utilization", 0.9)) * hw.memory_gib
        kv = budget - actor * 2 / GIB - VLLM_ACTIVATION_GIB
        seqs = max(0, int(kv * GIB // (shape.kv_bytes_per_token * width)))
    return Memory(
        actor_state=actor_state, critic_state=critic_state, reference=reference, transient=transient,
        overhead=CUDA_OVERHEAD_GIB if cfg.trainer.use_gpu else 0.0, learner_peak=peak, vllm_budget=budget,
        vllm_kv_cache=kv, vllm_full_sequences=seqs,
    )  # fmt: skip


def step_seconds(cfg: LearnerConfig, d: Derived, shape: ModelShape, hw: Hardware, a: Assumptions) -> dict[str, float]:
    """Seconds of one full step by phase (see the module docstring for the model)."""
    replicas = max(1.0, float(cfg.rollout.service.get("num_replicas", 1))) if rollout_gpus(cfg) else 1.0
    scale = shape.causal_lm_params / 7.6e9  # decode is bound by reading the weights: its rate scales inversely
    decode_rate, decode_step = hw.decode_tokens_per_s_7b / scale, hw.decode_step_s_7b * max(scale, 0.05)
    resp, prompt = a.response(cfg), a.prompt(cfg)
    gen = d.samples_per_step * resp / replicas / decode_rate + cfg.rollout.max_new_tokens * decode_step
    tokens = d.samples_per_step / cfg.trainer.num_workers * (prompt + cfg.rollout.max_new_tokens)  # padded, a rank
    gae = cfg.algorithm.estimator == "gae"
    trained = shape.causal_lm_params + (shape.critic_params if gae else 0)
    exp_flops = 2 * (2 * shape.causal_lm_params + (shape.critic_params if gae else 0)) * tokens
    per_token = 8 if cfg.model.gradient_checkpointing else 6
    upd_flops = per_token * trained * tokens * cfg.algorithm.ppo_epochs
    compute_bytes = shape.causal_lm_params * DTYPE_BYTES[cfg.model.dtype]
    out = {
        "generation": gen,
        "experience": exp_flops / hw.train_flops,
        "update": upd_flops / hw.train_flops,
        "weight_sync": compute_bytes / hw.link_bytes_per_s,
    }
    if cfg.rollout.export_every and rollout_gpus(cfg):
        out["export"] = compute_bytes / hw.store_bytes_per_s / cfg.rollout.export_every
    if cfg.run.checkpoint_every:
        # every worker uploads its shard at once (FSDP); under DDP rank 0's state is the whole of it
        n = cfg.trainer.num_workers if cfg.trainer.strategy == "fsdp" else 1
        out["checkpoint"] = checkpoint_bytes(cfg, shape) / n / hw.store_bytes_per_s / cfg.run.checkpoint_every
    if cfg.data.eval_prompts:
        evals = d.total_steps / cfg.run.eval_every if cfg.run.eval_every else 2
        n_eval = cfg.data.eval_limit
        eval_s = n_eval * resp / replicas / decode_rate + cfg.rollout.max_new_tokens * decode_step
        out["evaluation"] = eval_s * (evals + 1) / max(d.total_steps, 1)
    return out


def estimate(
    cfg: LearnerConfig, pool_size: int, shape: ModelShape | None, hw: Hardware, a: Assumptions
) -> RunEstimate:
    """The plan of one learner run on `pool_size` prompts (bytes, memory and time only when the shape is known)."""
    d = cfg.derive(pool_size)
    samples = run_samples(cfg, d)
    width = cfg.data.max_prompt_tokens + cfg.rollout.max_new_tokens
    k = cfg.run.checkpoint_every
    written = (d.total_steps // k if k else 0) + (1 if not k or d.total_steps % k else 0)  # the end always saves
    est = RunEstimate(
        derived=d, samples=samples, token_upper_bound=samples * width,
        learner_gpus=cfg.trainer.num_workers if cfg.trainer.use_gpu else 0, rollout_gpus=rollout_gpus(cfg),
        checkpoint_bytes=None, checkpoints_written=written, peak_store_bytes=None, retained_store_bytes=None,
        memory=None,
    )  # fmt: skip
    if shape is None:
        return est
    ck = checkpoint_bytes(cfg, shape)
    keep = cfg.run.keep_checkpoints
    kept = min(keep, written) if keep else written
    in_flight = 1 if written > kept else 0  # a new checkpoint is complete before the oldest one is pruned
    export = 0
    if cfg.rollout.export_every and rollout_gpus(cfg):
        export = shape.causal_lm_params * DTYPE_BYTES[cfg.model.dtype]  # the store keeps the newest two exports
    events = samples * EVENT_BYTES_PER_SAMPLE
    est.checkpoint_bytes = ck
    est.peak_store_bytes = ck * (kept + in_flight) + 3 * export + events  # + the export being written
    est.retained_store_bytes = ck * kept + 2 * export + events
    est.memory = memory(cfg, shape, hw)
    est.step_seconds = step_seconds(cfg, d, shape, hw, a)
    est.run_seconds = sum(est.step_seconds.values()) * d.total_steps
    gpus = est.learner_gpus + est.rollout_gpus
    est.gpu_hours = est.run_seconds / 3600 * gpus if gpus else None
    return est
