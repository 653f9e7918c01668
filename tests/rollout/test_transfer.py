"""The gloo weight-transfer engine's wire format: bucket plans both sides derive alike, typed views of bytes."""

from __future__ import annotations

import pytest
import torch

transfer = pytest.importorskip("limr.rollout.transfer")


def test_bucket_plan_is_consecutive_bounded_and_complete() -> None:
    sizes = [4, 4, 4, 10, 1, 3]
    plan = transfer.bucket_plan(sizes, 8)
    assert [list(b) for b in plan] == [[0, 1], [2], [3], [4, 5]]  # a tensor over the bound travels alone
    assert [i for b in plan for i in b] == list(range(len(sizes)))
    assert all(sum(sizes[i] for i in b) <= 8 or len(b) == 1 for b in plan)
    assert transfer.bucket_plan([], 8) == []


def test_mixed_dtypes_round_trip_through_one_bucket() -> None:
    tensors = [torch.randn(3).bfloat16(), torch.randn(2, 2), torch.arange(5, dtype=torch.int64)]
    raw = torch.cat([t.contiguous().view(-1).view(torch.uint8) for t in tensors])  # what the sender broadcasts
    parts = raw.split([t.numel() * t.element_size() for t in tensors])
    for t, part in zip(tensors, parts, strict=True):
        assert torch.equal(transfer._typed(part, t.dtype).view(t.shape), t)


def test_gloo_engines_are_registered_with_vllm() -> None:
    from vllm.distributed.weight_transfer import WeightTransferEngineFactory

    transfer.register()  # idempotent
    engine = WeightTransferEngineFactory._registry["gloo"]()  # noqa: SLF001 (the factory's lookup)
    assert engine is transfer.GlooWeightTransferEngine
    assert transfer.backend_for("cuda") == "nccl" and transfer.backend_for("cpu") == "gloo"
