"""Typed configuration of the rollout service: the engine, the request limits, the Serve deployment.

One pydantic model per component, validated when the service starts, so a bad value fails with the field's
name before an engine is built (STYLE.md 4). `RolloutArgs` is also the argument model of
`limr.rollout.app:build_app`, so a RayService `serveConfigV2` passes the same fields as `args:`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Environment variable holding the admin token of POST /v1/weights (from a Kubernetes Secret in-cluster).
ADMIN_TOKEN_ENV = "LIMR_ROLLOUT_ADMIN_TOKEN"


class EngineConfig(BaseModel):
    """Settings of one vLLM engine (one per Serve replica)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Local HuggingFace model directory (config.json, safetensors, tokenizer).")
    tokenizer: str | None = Field(None, description="Tokenizer directory; default: the model directory.")
    served_model_name: str | None = Field(None, description="Name in /v1/models and responses; default: dir name.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Weight/activation dtype; 'auto' takes the checkpoint's config.json dtype (vLLM's own 'auto' "
        "would pick bfloat16 on CPU even for float32 checkpoints, and logprobs would drift from the learner's).",
    )
    max_model_len: int = Field(2048, ge=16, description="Longest prompt + completion, in tokens.")
    kv_cache_gib: float | None = Field(
        1.0,
        gt=0,
        description="KV-cache size in GiB (vLLM kv_cache_memory_bytes; on CPU this is VLLM_CPU_KVCACHE_SPACE). "
        "None: let vLLM size it from gpu_memory_utilization (GPUs).",
    )
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Fraction of GPU memory vLLM may use.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine (tensor parallelism).")
    seed: int = Field(0, description="Engine seed; requests without a seed draw from this stream.")
    enforce_eager: bool = Field(True, description="Skip graph capture (faster start; CPU has none anyway).")
    enable_prefix_caching: bool = Field(True, description="Reuse KV of shared prompt prefixes (reset on updates).")
    enable_chunked_prefill: bool | None = Field(
        None,
        description="None: off on CPU (vllm-cpu 0.32 crashes the engine on seeded requests whose prefill is "
        "chunked: 'CPU Generator does not use offset'), vLLM's default on GPUs.",
    )
    logprobs_mode: Literal["raw_logprobs", "processed_logprobs"] = Field(
        "raw_logprobs",
        description="raw: log-softmax of the model's logits (what the learner recomputes); "
        "processed: after temperature/top_p, i.e. the sampling distribution.",
    )
    max_num_seqs: int = Field(256, ge=1, description="Sequences the engine schedules at once.")

    @property
    def name(self) -> str:
        """The model name served in /v1/models and every response."""
        from pathlib import Path

        return self.served_model_name or Path(self.model.rstrip("/")).name or self.model


class RequestLimits(BaseModel):
    """Bounds on one request, checked at the HTTP edge (4xx) and in the handle path alike."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_prompts: int = Field(256, ge=1, description="Prompts per request.")
    max_n: int = Field(64, ge=1, description="Samples per prompt.")
    max_tokens: int | None = Field(
        None, ge=1, description="Largest max_tokens a request may ask for; None: engine.max_model_len - 1."
    )
    max_samples: int = Field(4096, ge=1, description="prompts x n per request.")


class RolloutArgs(BaseModel):
    """Everything `build_app` needs: engine, limits, and how Ray Serve deploys it."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineConfig = Field(description="vLLM engine settings (one engine per replica).")
    limits: RequestLimits = Field(default_factory=RequestLimits, description="Per-request bounds.")
    deployment_name: str = Field("rollout", description="Serve deployment name (unique per application).")
    num_replicas: int = Field(1, ge=1, description="Replicas when autoscaling is off.")
    autoscaling_min_replicas: int | None = Field(None, ge=0, description="Enable autoscaling: lower bound.")
    autoscaling_max_replicas: int | None = Field(None, ge=1, description="Enable autoscaling: upper bound.")
    target_ongoing_requests: float = Field(4.0, gt=0, description="Autoscaling target per replica.")
    max_ongoing_requests: int = Field(64, ge=1, description="Requests a replica accepts before Serve queues.")
    num_cpus: float = Field(1.0, ge=0, description="Ray CPUs reserved per replica.")
    num_gpus: float = Field(0.0, ge=0, description="Ray GPUs per replica (set tensor_parallel_size to match).")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per replica, e.g. {rollout_pool: 1}: places replicas (and their "
        "restarts) on the nodes that advertise them, the chart's rollout node pool.",
    )
    admin_token: str | None = Field(
        None, description="Bearer token for POST /v1/weights; None disables HTTP weight loading (403)."
    )
    env_vars: dict[str, str] = Field(
        default_factory=dict,
        description="Environment of the replicas (e.g. LIMR_S3_ENDPOINT for s3:// checkpoints); merged into "
        "the Ray runtime_env.",
    )
    weight_sync_interval_s: float = Field(
        1.0, gt=0, description="How often an idle replica checks for weights another replica published."
    )
    weight_transfer_timeout_s: float = Field(
        300.0,
        gt=0,
        description="How long a replica waits for the engine to start an update, and for the next step of an "
        "open update before it declares the learner gone (its weights are then inconsistent: not ready).",
    )

    @model_validator(mode="after")
    def _check(self) -> RolloutArgs:
        lo, hi = self.autoscaling_min_replicas, self.autoscaling_max_replicas
        if (lo is None) != (hi is None):
            raise ValueError("autoscaling_min_replicas and autoscaling_max_replicas must be given together")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"autoscaling_min_replicas ({lo}) > autoscaling_max_replicas ({hi})")
        if self.num_gpus and self.num_gpus < self.engine.tensor_parallel_size and self.num_gpus >= 1:
            raise ValueError(
                f"num_gpus ({self.num_gpus}) < engine.tensor_parallel_size ({self.engine.tensor_parallel_size})"
            )
        if self.limits.max_tokens is None:  # derived here, once: the longest completion the engine can hold
            self.limits = self.limits.model_copy(update={"max_tokens": self.engine.max_model_len - 1})
        if self.limits.max_tokens >= self.engine.max_model_len:
            raise ValueError(
                f"limits.max_tokens ({self.limits.max_tokens}) must be < engine.max_model_len "
                f"({self.engine.max_model_len}) to leave room for the prompt"
            )
        return self

    @property
    def autoscaling(self) -> bool:
        return self.autoscaling_min_replicas is not None
