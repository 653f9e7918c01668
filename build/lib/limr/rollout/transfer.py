"""Weight transfer from the learner into running vLLM engines, through vLLM's own weight-transfer API.

vLLM 0.32 moves trainer weights with a pair of engines: a worker-side `WeightTransferEngine` (made by
`WeightTransferEngineFactory` from the LLM's `weight_transfer_config`; driven by `init_weight_transfer_engine`,
`start_weight_update`, `update_weights`, `finish_weight_update`) and a trainer-side `TrainerWeightTransferEngine`
(`WeightTransferTrainerFactory`). On GPUs limr uses vLLM's NCCL pair as is. vLLM has no CPU transport, so this
module registers a gloo pair under the name "gloo" with the same protocol: one process group between the
learner's rank 0 (group rank 0, the sender) and every worker of every replica, tensors packed into byte buckets of
`bucket_bytes` and broadcast bucket by bucket, each bucket loaded into the model as it arrives (vLLM's layerwise
reload, opened by start_weight_update and finished by finish_weight_update). Peak extra memory on either side is
one bucket, never a second copy of the model.

Imports vLLM: loaded by the rollout engine (limr.rollout.engine), its worker extension and the learner's publisher.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from vllm.distributed.weight_transfer.base import (
    ParamMeta,
    TrainerInitInfo,
    TrainerWeightTransferEngine,
    WeightSource,
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferUpdateInfo,
)
from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory, WeightTransferTrainerFactory

GLOO = "gloo"
DEFAULT_BUCKET_BYTES = 64 << 20  # 64 MiB: large enough to amortise a broadcast, small next to any model
DEFAULT_TIMEOUT_S = 300.0


@dataclass(kw_only=True)
class GlooInitInfo(WeightTransferInitInfo):
    """Worker side: where the group meets (the learner hosts the store), this replica's first rank, bucket size."""

    master_address: str
    master_port: int
    rank_offset: int
    world_size: int
    bucket_bytes: int = DEFAULT_BUCKET_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass
class GlooTrainerInitInfo(TrainerInitInfo):
    """Trainer side of the gloo pair; `rank` is the learner rank (rank 0 sends)."""

    backend: ClassVar[str] = GLOO

    master_address: str
    master_port: int
    world_size: int
    bucket_bytes: int = DEFAULT_BUCKET_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass
class GlooUpdateInfo(WeightTransferUpdateInfo):
    """One round: the parameters (HF names) in the order the sender streams them."""

    names: list[str]
    dtype_names: list[str]
    shapes: list[list[int]]


def bucket_plan(nbytes: list[int], bucket_bytes: int) -> list[range]:
    """Split tensors (their byte sizes, in stream order) into consecutive buckets of at most `bucket_bytes`
    (a larger tensor travels alone). Sender and receivers both derive the plan from the round's metadata."""
    buckets: list[range] = []
    start, size = 0, 0
    for i, n in enumerate(nbytes):
        if i > start and size + n > bucket_bytes:
            buckets.append(range(start, i))
            start, size = i, 0
        size += n
    if start < len(nbytes):
        buckets.append(range(start, len(nbytes)))
    return buckets


def _nbytes(dtype: torch.dtype, shape: list[int] | tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n * torch.empty((), dtype=dtype).element_size()


def _typed(raw: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bytes of one tensor as `dtype`: a view when the bytes are aligned for it, else a copy (mixed dtypes)."""
    size = torch.empty((), dtype=dtype).element_size()
    return raw.view(dtype) if raw.storage_offset() % size == 0 else raw.clone().view(dtype)


def open_group(address: str, port: int, rank: int, world_size: int, timeout_s: float) -> dist.ProcessGroup:
    """A gloo group of its own (its own TCP store, hosted by rank 0): it never touches the default process group
    of the learner (Ray Train's) or of the vLLM workers (tensor parallelism)."""
    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(address, port, world_size, rank == 0, timeout=timeout, wait_for_workers=False)
    return dist.ProcessGroupGloo(dist.PrefixStore("limr-weights", store), rank, world_size, timeout)


def _broadcast(group: dist.ProcessGroup, tensor: torch.Tensor) -> None:
    opts = dist.BroadcastOptions()
    opts.rootRank = 0
    group.broadcast([tensor], opts).wait()


class GlooWeightTransferEngine(WeightTransferEngine[GlooInitInfo, GlooUpdateInfo]):
    """Worker side: receives buckets from group rank 0 and hands each bucket's tensors to `model.load_weights`."""

    init_info_cls = GlooInitInfo
    update_info_cls = GlooUpdateInfo

    def __init__(self, config, vllm_config, device, model) -> None:  # noqa: ANN001 (vLLM's factory signature)
        super().__init__(config, vllm_config, device, model)
        self.group: dist.ProcessGroup | None = None
        self.bucket_bytes = DEFAULT_BUCKET_BYTES

    def init_transfer_engine(self, init_info: GlooInitInfo) -> None:
        pc = self.parallel_config  # this worker's rank among all workers of the replica (TP x PP, DP)
        rank = init_info.rank_offset + pc.data_parallel_index * pc.world_size + pc.rank
        self.shutdown()
        self.group = open_group(
            init_info.master_address, init_info.master_port, rank, init_info.world_size, init_info.timeout_s
        )
        self.bucket_bytes = init_info.bucket_bytes

    def start_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

        initialize_layerwise_reload(self.model)

    def finish_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

        finalize_layerwise_reload(self.model, self.model_config)

    def update_weights(self, update_info: dict[str, Any]) -> None:
        # the base class ends with torch.accelerator.synchronize(), which has no CPU device; gloo is synchronous
        self.receive_weights(self.parse_update_info(update_info))

    def receive_weights(self, update_info: GlooUpdateInfo) -> None:
        if self.group is None:
            raise RuntimeError("gloo weight transfer not initialised: call init_weight_transfer_engine first")
        dtypes = [getattr(torch, d) for d in update_info.dtype_names]
        sizes = [_nbytes(d, s) for d, s in zip(dtypes, update_info.shapes, strict=True)]
        for bucket in bucket_plan(sizes, self.bucket_bytes):
            buf = torch.empty(sum(sizes[i] for i in bucket), dtype=torch.uint8)  # (bytes,) one bucket
            _broadcast(self.group, buf)
            parts = buf.split([sizes[i] for i in bucket])
            self.model.load_weights(
                [
                    (update_info.names[i], _typed(part, dtypes[i]).view(update_info.shapes[i]).to(self.device))
                    for i, part in zip(bucket, parts, strict=True)
                ]
            )

    def shutdown(self) -> None:
        self.group = None  # gloo closes its sockets when the group is collected


class GlooTrainerWeightTransferEngine(TrainerWeightTransferEngine[GlooTrainerInitInfo]):
    """Trainer side: on rank 0 packs the source's tensors into buckets and broadcasts them while the replicas'
    `update_weights` receive; other learner ranks only iterate the source (an FSDP gather is a collective)."""

    init_info_cls = GlooTrainerInitInfo

    def __init__(self, *, client, source: WeightSource, is_sender: bool, bucket_bytes: int) -> None:  # noqa: ANN001
        super().__init__(client=client, source=source, is_sender=is_sender)
        self.bucket_bytes = bucket_bytes
        self.group: dist.ProcessGroup | None = None

    @classmethod
    def trainer_init(cls, init_info: GlooTrainerInitInfo, *, client, source=None):  # noqa: ANN001, ANN206
        if source is None:
            raise ValueError("gloo weight transfer needs a WeightSource")
        engine = cls(client=client, source=source, is_sender=init_info.is_sender, bucket_bytes=init_info.bucket_bytes)
        if not engine.is_sender:
            return engine
        worker_info = GlooInitInfo(
            master_address=init_info.master_address,
            master_port=init_info.master_port,
            rank_offset=1,
            world_size=init_info.world_size,
            bucket_bytes=init_info.bucket_bytes,
            timeout_s=init_info.timeout_s,
        )
        # The workers block in the rendezvous, as the group's opening does here: open it on a side thread, so a
        # member that fails or is gone fails the call at once instead of after the rendezvous timeout.
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            group = pool.submit(
                open_group,
                init_info.master_address,
                init_info.master_port,
                0,
                init_info.world_size,
                init_info.timeout_s,
            )
            client.init_weight_transfer_engine(asdict(worker_info))
            engine.group = group.result()
        finally:
            pool.shutdown(wait=False)
        return engine

    def send_weights(self) -> None:
        assert self.source is not None
        meta = self.source.metadata()
        if not self.is_sender:
            for _ in self.source:
                pass
            return
        info = GlooUpdateInfo(
            names=[m.name for m in meta],
            dtype_names=[str(m.dtype).removeprefix("torch.") for m in meta],
            shapes=[list(m.shape) for m in meta],
        )
        self.client.start_weight_update()
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            received = pool.submit(self.client.update_weights, asdict(info))
            self._send(meta)
            received.result()
        finally:
            pool.shutdown(wait=False)  # a failed broadcast leaves the RPC blocked; never join it
        self.client.finish_weight_update()

    def _send(self, meta: list[ParamMeta]) -> None:
        assert self.group is not None and self.source is not None
        sizes = [_nbytes(m.dtype, m.shape) for m in meta]
        stream: Iterator[tuple[str, torch.Tensor]] = iter(self.source)
        for bucket in bucket_plan(sizes, self.bucket_bytes):
            parts = []
            for i in bucket:
                name, tensor = next(stream)
                if name != meta[i].name or tuple(tensor.shape) != tuple(meta[i].shape):
                    raise RuntimeError(f"weight source yielded {name} {tuple(tensor.shape)}, declared {meta[i]}")
                parts.append(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8))
            _broadcast(self.group, torch.cat(parts))  # (bytes,) one bucket

    def shutdown(self) -> None:
        self.group = None


def register() -> None:
    """Make the gloo pair known to vLLM's factories in this process (idempotent: vLLM refuses a second one)."""
    for factory, engine in (
        (WeightTransferEngineFactory, GlooWeightTransferEngine),
        (WeightTransferTrainerFactory, GlooTrainerWeightTransferEngine),
    ):
        try:
            factory.register_engine(GLOO, engine)
        except ValueError:  # "already registered": this process imported the module before
            pass


def backend_for(device_type: str) -> str:
    """vLLM's NCCL engine where the engine runs on CUDA; the gloo engine elsewhere (CPU)."""
    return "nccl" if device_type == "cuda" else GLOO


register()
