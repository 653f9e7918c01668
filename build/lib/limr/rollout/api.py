"""HTTP request/response schemas of the rollout service (pydantic; FastAPI answers 422 on schema errors).

`/v1/generate` is limr's batch API (what the learner needs: token ids, per-token logprobs, finish reasons,
the weight version). The OpenAI API's schemas are vLLM's own (limr.rollout.openai_api).
Limits from `RequestLimits` are checked here and answered with 400 and a message naming the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from limr.rollout.config import RequestLimits
from limr.rollout.types import InvalidRequest, SamplingSpec

TokenIds = list[int]


class GenerateRequest(BaseModel):
    """POST /v1/generate: a batch of prompts (texts xor token-id lists) and how to sample them."""

    model_config = ConfigDict(extra="forbid")

    prompts: list[str] | None = Field(None, description="Prompt texts (tokenised by the served tokenizer).")
    prompt_token_ids: list[TokenIds] | None = Field(None, description="Pre-tokenised prompts.")
    n: int = Field(1, ge=1, description="Samples per prompt.")
    temperature: float = Field(1.0, ge=0, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1, description="New tokens per sample.")
    stop: list[str] | None = Field(None, description="Stop strings.")
    seed: int | None = Field(None, description="Seed for reproducible samples.")
    logprobs: bool = Field(True, description="Return each sampled token's log-probability.")
    ignore_eos: bool = Field(False, description="Generate exactly max_tokens (benchmarks).")

    @model_validator(mode="after")
    def _one_input(self) -> GenerateRequest:
        if (self.prompts is None) == (self.prompt_token_ids is None):
            raise ValueError("give exactly one of 'prompts' and 'prompt_token_ids'")
        if not (self.prompts or self.prompt_token_ids):
            raise ValueError("the batch is empty")
        return self

    @property
    def inputs(self) -> list[str] | list[TokenIds]:
        return self.prompts if self.prompts is not None else self.prompt_token_ids  # type: ignore[return-value]

    def spec(self) -> SamplingSpec:
        return SamplingSpec(
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            stop=self.stop,
            seed=self.seed,
            logprobs=self.logprobs,
            ignore_eos=self.ignore_eos,
        )


def check_limits(num_prompts: int, n: int, max_tokens: int | None, limits: RequestLimits) -> None:
    """Raise InvalidRequest (-> 400) when a request exceeds the service's bounds (every door: batch, OpenAI)."""
    if num_prompts > limits.max_prompts:
        raise InvalidRequest(f"{num_prompts} prompts > limit {limits.max_prompts} per request")
    if n > limits.max_n:
        raise InvalidRequest(f"n={n} > limit {limits.max_n}")
    if limits.max_tokens is not None and max_tokens is not None and max_tokens > limits.max_tokens:
        raise InvalidRequest(f"max_tokens={max_tokens} > limit {limits.max_tokens}")
    if num_prompts * n > limits.max_samples:
        raise InvalidRequest(f"{num_prompts} prompts x n={n} > limit {limits.max_samples} samples per request")


class ErrorDetail(BaseModel):
    """The body of limr's own error answers (the OpenAI routes answer in OpenAI's error shape instead)."""

    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error codes a route answers, with their meaning."""
    meaning = {
        400: "Invalid request (limits, prompt too long, unknown tensors, unloadable checkpoint)",
        401: "Missing or wrong admin token",
        403: "Weight loading over HTTP is disabled (no admin token configured)",
        503: "The replica refuses to sample: its weights are inconsistent after a failed update",
    }
    return {code: {"model": ErrorDetail, "description": meaning[code]} for code in codes}


class WeightsRequest(BaseModel):
    """POST /v1/weights: load a checkpoint (safetensors directory) from a local path or store URI."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(min_length=1, description="Local path, file:// or s3://bucket/prefix of the checkpoint.")
