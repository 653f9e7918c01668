"""Mixed precision as OpenRLHF (DeepSpeed bf16) and verl (FSDP MixedPrecision) do it: fp32 master weights and
AdamW state, compute in `model.dtype` (bf16, or fp16 with loss scaling), gradients reduced in fp32.

Why: at the paper's actor lr of 5e-7 an Adam update (~lr per step) is about 1/200 of bf16's spacing near
|w| = 0.02 (2^-13 ~ 1.2e-4), so updating bf16 parameters in place rounds almost every update away and the actor
barely moves. With fp32 masters the update accumulates; only the compute copy is rounded.

How, by strategy:
  ddp / one process   parameters (the masters) and optimizer state stay fp32; forward and backward run under
                      `torch.autocast(dtype)`, so matmuls read a compute-dtype copy and gradients land in fp32 on the
                      fp32 parameters, and DDP all-reduces them in fp32.
  fsdp                FSDP2 `fully_shard` per decoder layer and at the root with
                      `MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=float32)`: the sharded parameters are the
                      fp32 masters, each layer is gathered in the compute dtype for its forward/backward, gradients
                      are reduce-scattered in fp32 onto the fp32 shards. Works on CPU (gloo) and GPU (NCCL).
The frozen reference model has no masters: it is loaded in the compute dtype. Weight sync and exports send the
compute dtype (`model.config.dtype` names it, so an export's config.json matches its safetensors).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
MASTER = "float32"  # trained models always keep fp32 parameters (the masters)


def torch_dtype(name: str) -> torch.dtype:
    return DTYPES[name]


def is_mixed(dtype: str) -> bool:
    return dtype != "float32"


def mark_compute_dtype(model: nn.Module, dtype: str) -> None:
    """Record the compute dtype on the model's HF config: exports and weight sync send (and declare) that dtype."""
    config = getattr(model, "config", None)
    if config is not None:
        config.dtype = dtype


def compute_dtype_of(model: nn.Module) -> torch.dtype | None:
    """The compute dtype a trained model declares (`mark_compute_dtype`), else None (send parameters as they are)."""
    dtype = getattr(getattr(model, "config", None), "dtype", None)
    if isinstance(dtype, str):
        return DTYPES.get(dtype)
    return dtype if isinstance(dtype, torch.dtype) else None


def autocast(device: torch.device, dtype: str, sharded: bool) -> contextlib.AbstractContextManager:
    """The forward/backward context: autocast to the compute dtype for fp32-parameter models (FSDP2 casts the
    gathered parameters itself, so a sharded model needs none)."""
    if not is_mixed(dtype) or sharded:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def shard(model: nn.Module, dtype: str) -> nn.Module:
    """FSDP2: shard every decoder layer and the root (embeddings, norms, heads), mixed precision per `dtype`."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=DTYPES[dtype], reduce_dtype=torch.float32)
    for module in model.modules():
        if type(module).__name__.endswith("DecoderLayer"):
            fully_shard(module, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


@contextlib.contextmanager
def gradient_sync(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Accumulate gradients locally unless `enabled` (the last micro-batch): DDP's no_sync, FSDP2's switch."""
    if enabled:
        yield
    elif is_sharded(model):
        model.set_requires_gradient_sync(False)  # type: ignore[operator]
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)  # type: ignore[operator]
    elif hasattr(model, "no_sync"):
        with model.no_sync():
            yield
    else:
        yield


def clip_grad_norm(model: nn.Module, max_norm: float) -> float:
    """Clip the fp32 gradients; under FSDP2 the norm is reduced over every rank's shards (a DTensor)."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    full = getattr(norm, "full_tensor", None)
    return float(full() if callable(full) else norm)


def grad_scaler(dtype: str, device: torch.device) -> Any:
    """fp16 needs loss scaling (its range underflows small gradients); bf16 and fp32 do not."""
    return torch.amp.GradScaler(device.type, enabled=dtype == "float16")


def compute_state(state: dict[str, torch.Tensor], dtype: str | torch.dtype) -> dict[str, torch.Tensor]:
    """A state dict with its floating tensors in the compute dtype (what the rollout engine loads)."""
    target = DTYPES[dtype] if isinstance(dtype, str) else dtype
    return {k: v.to(target) if v.is_floating_point() else v for k, v in state.items()}
