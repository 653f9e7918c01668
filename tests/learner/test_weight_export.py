"""Exports of the actor for rollout replicas that start cold: sharded HF directories in the store, and pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from limr.events.schema import weights_key
from limr.learner.dist import DistCtx
from limr.learner.generator.exporter import (
    INDEX,
    WeightExporter,
    export_uri,
    hf_files,
    prune_exports,
    write_export,
)
from limr.store import LocalStore, StoreError

pytest.importorskip("vllm")


def _source(model: torch.nn.Module):  # noqa: ANN202
    from vllm.distributed.weight_transfer.base import ModuleSource

    return ModuleSource(model)


def test_export_is_a_sharded_hf_directory_a_replica_loads(tmp_path: Path, tiny_model: Path) -> None:
    import transformers

    from limr.rollout.weights import checkpoint_shapes, fetch_checkpoint

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model)
    with torch.no_grad():
        model.model.norm.weight.add_(0.5)  # weights the base checkpoint does not have
    store = LocalStore(tmp_path / "store")
    key = weights_key("run-a", 7)
    write_export(_source(model), store, key, DistCtx(), hf_files(model, tokenizer), shard_bytes=1 << 18)

    local = fetch_checkpoint(export_uri(store, key), tmp_path / "unused")
    params = dict(model.named_parameters())
    shards = sorted(p.name for p in local.glob("*.safetensors"))
    assert len(shards) > 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert checkpoint_shapes(local) == {n: tuple(p.shape) for n, p in params.items()}
    index = json.loads((local / INDEX).read_text())
    assert set(index["weight_map"]) == set(params) and set(index["weight_map"].values()) == set(shards)
    assert index["metadata"]["total_size"] == sum(p.numel() * p.element_size() for p in params.values())
    # a whole HF model directory: transformers loads the very weights that were exported
    again = transformers.AutoModelForCausalLM.from_pretrained(local)
    assert transformers.AutoTokenizer.from_pretrained(local)("1+2=").input_ids == tokenizer("1+2=").input_ids
    for name, p in again.named_parameters():
        assert torch.equal(p, params[name]), name


def test_a_store_failure_still_drains_the_source_and_writes_no_index(tmp_path: Path) -> None:
    """Under FSDP every rank gathers in lockstep: rank 0 must keep iterating after an upload failed."""

    class Failing(LocalStore):
        def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
            raise StoreError("disk full")

    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 64))
    seen: list[str] = []

    class Counting:
        def __init__(self) -> None:
            self.inner = _source(model)

        def metadata(self):  # noqa: ANN202
            return self.inner.metadata()

        def __iter__(self):  # noqa: ANN204
            for name, t in self.inner:
                seen.append(name)
                yield name, t

    store = Failing(tmp_path)
    with pytest.raises(StoreError, match="disk full"):
        write_export(Counting(), store, weights_key("run-a", 1), DistCtx(), {}, shard_bytes=1 << 10)
    assert seen == [n for n, _ in model.named_parameters()]
    assert store.list_keys() == []


def test_prune_keeps_the_newest_and_the_advertised(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for version in (1, 2, 3, 4, 5):
        for name in ("model-00001-of-00001.safetensors", INDEX):
            store.put(weights_key("run-a", version) + name, b"x")
    store.put(weights_key("run-b", 1) + INDEX, b"x")  # another run's exports are not this run's to prune
    advertised = export_uri(store, weights_key("run-a", 2))
    assert prune_exports(store, "run-a", 2, advertised) == [1, 3]
    left = {k.split("/")[3] for k in store.list_keys("runs/run-a/weights/")}
    assert left == {f"{v:010d}" for v in (2, 4, 5)}
    assert store.exists(weights_key("run-b", 1) + INDEX)
    assert prune_exports(store, "run-a", 1, None) == [2, 4]


def test_exports_every_n_syncs_from_the_first(tmp_path: Path) -> None:
    exporter = WeightExporter(LocalStore(tmp_path), "run-a", every=3)
    assert [exporter.count_sync() for _ in range(7)] == [True, False, False, True, False, False, True]
    with pytest.raises(ValueError, match="at least 1"):
        WeightExporter(LocalStore(tmp_path), "run-a", every=0)
