"""The weight-update half of the rollout engine (limr.rollout.engine.RolloutEngine): new weights arrive either over
vLLM's weight-transfer API (`init_transfer`, then per update `begin_update`, `receive_update` per round,
`finish_update`; the learner drives them through limr.rollout.sync) or as a checkpoint directory
(`load_checkpoint`). An update holds the engine's `VersionGate` alone, so no request runs on a mix of weights, and
one that fails half-way leaves the engine refusing to sample (`_broken`) until a whole update or load succeeds.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limr.rollout.aio import EngineLoop, VersionGate
from limr.rollout.config import EngineConfig
from limr.rollout.types import WeightLoadError
from limr.rollout.weights import checkpoint_shapes, fetch_checkpoint

# Parameters a learner's state_dict may carry that the HF checkpoint (and vLLM) do not: skipped.
_IGNORABLE = ("rotary_emb.inv_freq",)


class WeightUpdates:
    """Mixed into RolloutEngine, whose constructor sets the state below."""

    config: EngineConfig
    _loop: EngineLoop
    _gate: VersionGate
    _llm: Any  # vLLM's AsyncLLM
    _shapes: dict[str, tuple[int, ...]]  # the served checkpoint's parameter shapes
    _tied: bool  # tie_word_embeddings: lm_head.weight is the embedding
    _version: int
    _broken: str | None
    _updating: bool
    _update_started: float

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
