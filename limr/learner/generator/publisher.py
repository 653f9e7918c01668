"""The learner's side of weight sync: one transfer group with every live rollout replica, through vLLM's API.

Each sync: rank 0 reads the deployment's live members from its `WeightHub` (limr.rollout.sync); if they changed
(first sync, a replica added by autoscaling, one restarted or lost), or the module to send is another object, it
forms a new group (vLLM's `WeightTransferTrainerFactory.trainer_init`: NCCL between GPUs, limr's gloo engine on
CPU), then it reserves the next version and sends the actor's weights (`send_weights`: start, bucketed
broadcast, finish with the version) and commits the version. Every learner rank takes part (an FSDP gather is a
collective); only rank 0 sends. Exporting a version to the run's store for replicas that start cold is the
caller's next step (limr.learner.generator.exporter; ServiceGenerator.sync_weights).
No state dict is ever put in Ray's object store or held by an actor.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from limr.learner.dist import DistCtx
from limr.learner.models import unwrap

log = logging.getLogger("limr.learner")


class WeightSyncUnavailable(RuntimeError):
    """No rollout replica is alive to receive weights."""


class WeightSyncError(RuntimeError):
    """A weight sync failed (on some rank, or on some replica); the group is dropped and formed anew next time."""


def weight_source(model: nn.Module) -> Any:
    """The actor as a vLLM `WeightSource` (HF parameter names) in its compute dtype (limr.learner.precision: the
    fp32 masters are cast as they are sent). DDP or a plain module: its parameters; FSDP2: each sharded parameter
    gathered with `full_tensor()` as it is iterated (a collective, so every rank iterates in lockstep)."""
    from vllm.distributed.weight_transfer.base import ParamMeta, WeightSource, materialize_full_tensor

    from limr.learner.precision import compute_dtype_of

    module = unwrap(model)
    dtype = compute_dtype_of(module)

    def wire(t: torch.Tensor) -> torch.dtype:
        return dtype if dtype is not None and t.is_floating_point() else t.dtype

    class ComputeSource(WeightSource):
        def metadata(self) -> list[ParamMeta]:
            return [ParamMeta(n, wire(p), tuple(p.shape)) for n, p in module.named_parameters()]

        def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
            for n, p in module.named_parameters():
                full = materialize_full_tensor(p)
                yield n, full.to(wire(full))

    return ComputeSource()


class WeightPublisher:
    """Sends a learner's actor to every replica of one rollout deployment (construct and call on every rank)."""

    def __init__(
        self,
        hub: Any,
        ctx: DistCtx,
        bucket_bytes: int | None = None,
        wait_for_members_s: float = 300.0,
    ) -> None:
        from limr.rollout import transfer

        self.hub, self.ctx = hub, ctx
        self.backend = transfer.backend_for(ctx.device.type)
        self.bucket_bytes = bucket_bytes or transfer.DEFAULT_BUCKET_BYTES
        self.wait_for_members_s = wait_for_members_s
        self.members: list[tuple[str, int]] | None = None
        self._model: nn.Module | None = None  # the module the group's WeightSource reads (bound at formation)
        self._engine: Any = None
        self._client: Any = None

    def publish(self, model: nn.Module) -> int:
        """Send `model`'s weights to every live replica; returns the version they now serve (on every rank).

        A failure on any rank fails the call on every rank (WeightSyncError) and drops the group, so the next
        call forms a fresh one with whoever is alive then.
        """
        import ray

        members = self._live_members() if self.ctx.is_main else None
        members = self.ctx.broadcast_object(members)
        version, error = -1, None
        try:
            # vLLM's trainer engine binds its WeightSource at formation and replays it every round: a different
            # module needs a new group too, else the replicas would get the old module's weights under the new
            # version (the learner always passes its actor; tests and tools may pass another model).
            if members != self.members or self._engine is None or model is not self._model:
                self._form(members, model)
            if self.ctx.is_main:
                version = ray.get(self.hub.reserve.remote())
                self._client.version = version
            self._engine.send_weights()
            if self.ctx.is_main:
                ray.get(self.hub.commit.remote(version, None))
        except Exception as e:  # noqa: BLE001 (reported on every rank below)
            log.exception("weight sync failed")
            self._engine, self.members, self._model = None, None, None
            error = f"{type(e).__name__}: {e}"
        version, error = self.ctx.broadcast_object((version, error))
        if error is not None:
            raise WeightSyncError(error)
        return int(version)

    def _live_members(self) -> list[tuple[str, int]]:
        import ray

        deadline = time.monotonic() + self.wait_for_members_s
        while not (members := ray.get(self.hub.members.remote())):
            if time.monotonic() > deadline:
                raise WeightSyncUnavailable(f"no rollout replica registered within {self.wait_for_members_s:.0f}s")
            time.sleep(0.5)
        return members

    def _form(self, members: list[tuple[str, int]], model: nn.Module) -> None:
        import ray
        from vllm.distributed.weight_transfer import WeightTransferTrainerFactory

        from limr.rollout.sync import HubSyncClient

        source = weight_source(model)
        meta = source.metadata()  # every rank: under FSDP it is a collective
        if self.ctx.is_main:
            _check_names(meta, ray.get(self.hub.shapes.remote()))
        if self._engine is not None:
            self._engine.shutdown()
        self._client = HubSyncClient(self.hub, members)
        address, port = _endpoint() if self.ctx.is_main else ("", 0)
        info = self._init_info(address, port, self._client.world_size)
        log.info("weight transfer (%s): group of %d with replicas %s", self.backend, info.world_size, members)
        self._engine = WeightTransferTrainerFactory.trainer_init(info, client=self._client, source=source)
        self.members, self._model = members, model

    def _init_info(self, address: str, port: int, world_size: int) -> Any:
        """The trainer side's init info of this backend: vLLM's NCCL type on GPUs, limr's gloo type on CPU."""
        if self.backend == "nccl":
            from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

            info_type: Any = NCCLTrainerInitInfo
            bucket = {"packed_buffer_size_bytes": self.bucket_bytes}
        else:
            from limr.rollout.transfer import GlooTrainerInitInfo

            info_type = GlooTrainerInitInfo
            bucket = {"bucket_bytes": self.bucket_bytes}
        return info_type(rank=self.ctx.rank, master_address=address, master_port=port, world_size=world_size, **bucket)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None
        self._model = None


def _check_names(meta: list[Any], shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse to send what the replicas would not load (unknown names, other shapes), before any transfer: a
    refused tensor mid-broadcast would leave every replica half-updated."""
    from limr.rollout.types import WeightLoadError

    if not shapes:
        return
    unknown = [m.name for m in meta if m.name not in shapes]
    if unknown:
        raise WeightLoadError(f"parameters the served checkpoint does not have: {unknown[:5]}")
    wrong = [
        f"{m.name}: {tuple(m.shape)} != {tuple(shapes[m.name])}"
        for m in meta
        if tuple(m.shape) != tuple(shapes[m.name])
    ]
    if wrong:
        raise WeightLoadError(f"shape mismatch with the served checkpoint: {wrong[:5]}")


def _endpoint() -> tuple[str, int]:
    """This node's address (as Ray sees it, so replicas on other nodes can reach it) and a free port."""
    import ray

    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    return ray.util.get_node_ip_address(), port
