"""The gloo weight-transfer engine's wire format: bucket plans both sides derive alike, typed views of bytes."""

from __future__ import annotations

import pytest
import torch

transfer = pytest.importorskip("limr.rollout.transfer")


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


@pytest.mark.slow
@pytest.mark.vllm
def test_transfer_into_a_running_engine_matches_transformers(tiny_ckpts) -> None:  # noqa: ANN001
    """The learner's sender (vLLM's trainer factory, gloo engine) streams checkpoint B into an engine serving A, in
    small buckets; the engine then answers greedily exactly as transformers does with B (tied head refreshed)."""
    import transformers
    from vllm.distributed.weight_transfer import ModuleSource, WeightTransferTrainerFactory

    from limr.learner.generator.publisher import _endpoint
    from limr.rollout.config import EngineConfig
    from limr.rollout.engine import RolloutEngine
    from limr.rollout.types import SamplingSpec
    from tests.rollout.conftest import GREEDY_CANDIDATES, MIN_MARGIN, hf_greedy

    a, b = tiny_ckpts
    engine = RolloutEngine(EngineConfig(model=str(a), max_model_len=128, kv_cache_gib=0.1))

    class Direct:  # the VLLMWeightSyncClient a Serve replica's WeightHub commands amount to, called in-process
        version = 7

        def init_weight_transfer_engine(self, info):  # noqa: ANN001, ANN202
            engine.init_transfer(info)

        def start_weight_update(self):  # noqa: ANN202
            engine.begin_update(60)

        def update_weights(self, info):  # noqa: ANN001, ANN202
            engine.receive_update(info)

        def finish_weight_update(self, weight_version=None):  # noqa: ANN001, ANN202
            engine.finish_update(self.version)

    try:
        ref = hf_greedy(b, GREEDY_CANDIDATES[:12], max_new_tokens=8)
        keep = [i for i, (_, margin) in enumerate(ref) if margin > MIN_MARGIN][:3]
        assert keep, "no decisive prompt"
        model = transformers.AutoModelForCausalLM.from_pretrained(b)
        address, port = "127.0.0.1", _endpoint()[1]
        info = transfer.GlooTrainerInitInfo(rank=0, master_address=address, master_port=port, world_size=2)
        info.bucket_bytes = 1 << 16  # many buckets: layers span them
        sender = WeightTransferTrainerFactory.trainer_init(info, client=Direct(), source=ModuleSource(model))
        sender.send_weights()
        assert engine.weight_version == 7
        spec = SamplingSpec(temperature=0.0, max_tokens=8, ignore_eos=True)
        res = engine.generate([GREEDY_CANDIDATES[i] for i in keep], spec)
        assert [r.samples[0].token_ids for r in res.results] == [ref[i][0] for i in keep]
        assert res.weight_version == 7
    finally:
        engine.close()
