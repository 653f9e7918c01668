"""HTTP request/response schemas of the rollout service (pydantic; FastAPI answers 422 on schema errors).

`/v1/generate` is limr's batch API (what the learner needs: token ids, per-token logprobs, finish reasons,
the weight version). `/v1/completions` and `/v1/models` follow OpenAI's shapes so standard clients work.
Limits from `RequestLimits` are checked here and answered with 400 and a message naming the field.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from limr.rollout.config import RequestLimits
from limr.rollout.types import GenerateResult, InvalidRequest, SamplingSpec

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


def check_limits(num_prompts: int, spec: SamplingSpec, limits: RequestLimits) -> None:
    """Raise InvalidRequest (-> 400) when a request exceeds the service's bounds."""
    if num_prompts > limits.max_prompts:
        raise InvalidRequest(f"{num_prompts} prompts > limit {limits.max_prompts} per request")
    if spec.n > limits.max_n:
        raise InvalidRequest(f"n={spec.n} > limit {limits.max_n}")
    if limits.max_tokens is not None and spec.max_tokens > limits.max_tokens:
        raise InvalidRequest(f"max_tokens={spec.max_tokens} > limit {limits.max_tokens}")
    if num_prompts * spec.n > limits.max_samples:
        raise InvalidRequest(f"{num_prompts} prompts x n={spec.n} > limit {limits.max_samples} samples per request")


class CompletionRequest(BaseModel):
    """POST /v1/completions, the OpenAI fields limr supports (others are rejected, not silently ignored)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    prompt: str | list[str] | TokenIds | list[TokenIds]
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: int | None = Field(None, ge=0, le=0, description="Only 0 (the sampled token's logprob) is served.")
    stream: bool = False
    user: str | None = None
    ignore_eos: bool = False  # vLLM's extension to the OpenAI API (fixed-length completions)

    @model_validator(mode="after")
    def _check(self) -> CompletionRequest:
        if self.stream:
            raise ValueError("stream=true is not supported")
        if self.prompt == [] or self.prompt == "":
            raise ValueError("prompt is empty")
        return self

    @property
    def inputs(self) -> list[str] | list[TokenIds]:
        p = self.prompt
        if isinstance(p, str):
            return [p]
        if p and all(isinstance(x, int) for x in p):
            return [p]  # type: ignore[list-item]
        return p  # type: ignore[return-value]

    def spec(self) -> SamplingSpec:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return SamplingSpec(
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            stop=stop,
            seed=self.seed,
            logprobs=self.logprobs is not None,
            ignore_eos=self.ignore_eos,
        )


def completion_response(result: GenerateResult, tokenizer: Any, want_logprobs: bool) -> dict[str, Any]:
    """An OpenAI text_completion object; choice index = prompt_index * n + sample_index."""
    choices = []
    prompt_tokens = completion_tokens = 0
    for r in result.results:
        prompt_tokens += len(r.prompt_token_ids)
        for s in r.samples:
            completion_tokens += len(s.token_ids)
            choice: dict[str, Any] = {"index": len(choices), "text": s.text, "finish_reason": s.finish_reason}
            choice["logprobs"] = (
                {
                    "tokens": [tokenizer.decode([t]) for t in s.token_ids],
                    "token_logprobs": s.logprobs,
                    "top_logprobs": None,
                    "text_offset": None,
                }
                if want_logprobs
                else None
            )
            choices.append(choice)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "weight_version": result.weight_version,  # limr extension: which weights produced these choices
    }


class WeightsRequest(BaseModel):
    """POST /v1/weights: load a checkpoint (safetensors directory) from a local path or store URI."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(min_length=1, description="Local path, file:// or s3://bucket/prefix of the checkpoint.")
