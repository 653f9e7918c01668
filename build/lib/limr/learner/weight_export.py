"""The learner's periodic export of the actor's weights to the run's store, for rollout replicas that start cold.

Weights reach running replicas over the transfer group (limr.learner.weight_sync), and a transferred version has no
URI: a replica that starts or restarts mid-run (Serve replaced it, autoscaling added it) is not in the group until
the learner's next sync, and without an export it would serve the base checkpoint until then. So every
`rollout.export_every` syncs the learner also writes the version it has just sent to the run's store,

    runs/{run_id}/weights/{version:010d}/model-00001-of-0000N.safetensors   HF parameter names, the actor's dtype
    runs/{run_id}/weights/{version:010d}/model.safetensors.index.json       which shard holds which tensor
    runs/{run_id}/weights/{version:010d}/config.json, tokenizer files      so the directory is a whole HF model

attaches it to the deployment's WeightHub (a starting replica loads `hub.loadable()` with its `load_checkpoint`,
limr.rollout.weights), and prunes the run's older exports (keeping `KEEP_EXPORTS`, never the advertised one).

Streamed: every rank iterates the same `WeightSource` the transfer reads (under FSDP a collective gather, so all
ranks take part), rank 0 writes one shard of at most `SHARD_BYTES` at a time to a temp file and uploads it
(multipart on S3). Beyond the parameters themselves at most one shard is held (its CPU copy when they live on a
GPU; safetensors writes straight from the tensors' memory).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from limr.events.schema import run_prefix
from limr.learner.dist import DistCtx
from limr.store import ObjectStore

log = logging.getLogger("limr.learner")

SHARD_BYTES = 1 << 30  # 1 GiB: a 7B bf16 actor is ~15 shards; on GPUs the export's extra host memory is one
KEEP_EXPORTS = 2  # the newest and the one before: a replica may still be downloading it when the next one lands
INDEX = "model.safetensors.index.json"


def exports_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}weights/"


def export_key(run_id: str, version: int) -> str:
    """Key prefix (ends with '/') of the export of weight `version`."""
    return f"{exports_prefix(run_id)}{version:010d}/"


def export_uri(store: ObjectStore, key: str) -> str:
    """The URI a replica loads the export under `key` from (file:// or s3://, limr.rollout.weights)."""
    return f"{store.uri}/{key.rstrip('/')}"


def write_export(
    source: Any, store: ObjectStore, key: str, ctx: DistCtx, files: dict[str, bytes], shard_bytes: int = SHARD_BYTES
) -> None:
    """Write the weights `source` yields (a vLLM `WeightSource`; every rank iterates it, in lockstep under FSDP)
    under `key` as sharded safetensors plus their index and `files` (name -> bytes: config, tokenizer); rank 0
    writes. A store failure does not stop rank 0's iteration (the other ranks' gathers need it); it is raised
    once the source is exhausted."""
    from safetensors.torch import save_file
    from vllm.distributed.weight_transfer.base import materialize_full_tensor

    from limr.rollout.transfer import bucket_plan

    meta = source.metadata()
    shards = bucket_plan([math.prod(m.shape) * m.dtype.itemsize for m in meta], shard_bytes)
    shard_of = {i: s for s, rng in enumerate(shards) for i in rng}
    names = [f"model-{s + 1:05d}-of-{len(shards):05d}.safetensors" for s in range(len(shards))]
    tmp = Path(tempfile.mkdtemp(prefix="limr-export-")) if ctx.is_main else None
    weight_map: dict[str, str] = {}
    pending: dict[str, Any] = {}
    failure: Exception | None = None
    try:
        for i, (name, tensor) in enumerate(source):
            if name != meta[i].name:
                raise ValueError(f"weight source yielded {name!r}, its metadata announced {meta[i].name!r}")
            if tmp is None:
                continue
            pending[name] = materialize_full_tensor(tensor).detach().to("cpu").contiguous()
            s = shard_of[i]
            if i + 1 < len(meta) and shard_of[i + 1] == s:
                continue
            if failure is None:
                try:
                    save_file(pending, str(tmp / names[s]), metadata={"format": "pt"})
                    store.put_file(key + names[s], str(tmp / names[s]))
                    weight_map.update(dict.fromkeys(pending, names[s]))
                except Exception as e:  # noqa: BLE001 (raised after the loop)
                    failure = e
                (tmp / names[s]).unlink(missing_ok=True)
            pending = {}
        if failure is not None:
            raise failure
        if tmp is not None:
            total = sum(math.prod(m.shape) * m.dtype.itemsize for m in meta)
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            for name, data in {**files, INDEX: json.dumps(index, indent=2).encode()}.items():
                store.put(key + name, data)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def hf_files(model: nn.Module, tokenizer: Any) -> dict[str, bytes]:
    """The small files that make an export a whole HF model directory: the model's config (and generation
    config), the tokenizer's files. A model without a HF config (a test module) gives none of its own."""
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="limr-export-") as d:
        for part in (getattr(model, "config", None), getattr(model, "generation_config", None), tokenizer):
            if part is not None:
                part.save_pretrained(d)
        for f in sorted(Path(d).iterdir()):
            if f.is_file():
                out[f.name] = f.read_bytes()
    return out


def prune_exports(store: ObjectStore, run_id: str, keep: int, advertised: str | None) -> list[int]:
    """Delete the run's exports but the newest `keep` and the one at URI `advertised` (the hub's loadable one,
    which a replica may load at any moment). Returns the versions deleted."""
    prefix = exports_prefix(run_id)
    keys: dict[int, list[str]] = {}
    for info in store.list(prefix):
        head = info.key[len(prefix) :].split("/", 1)[0]
        if head.isdigit():
            keys.setdefault(int(head), []).append(info.key)
    kept = set(sorted(keys)[-keep:]) if keep > 0 else set()
    kept |= {v for v in keys if export_uri(store, export_key(run_id, v)) == advertised}
    gone = sorted(set(keys) - kept)
    for version in gone:
        for key in keys[version]:
            store.delete(key)
    return gone


class WeightExporter:
    """Exports the actor every `every` weight syncs, the first included (a resumed run's first sync sends weights a
    cold replica could get nowhere else). Construct and call on every rank; the store is written by rank 0."""

    def __init__(
        self,
        store: ObjectStore,
        run_id: str,
        every: int,
        tokenizer: Any = None,
        shard_bytes: int = SHARD_BYTES,
        keep: int = KEEP_EXPORTS,
    ) -> None:
        if every < 1:
            raise ValueError(f"export every {every} syncs: must be at least 1")
        self.store, self.run_id, self.every, self.tokenizer = store, run_id, every, tokenizer
        self.shard_bytes, self.keep = shard_bytes, keep
        self._syncs = 0

    def due(self) -> bool:
        """Count one weight sync; True when its version is to be exported (the same answer on every rank)."""
        self._syncs += 1
        return (self._syncs - 1) % self.every == 0

    def export(self, model: nn.Module, version: int, hub: Any, ctx: DistCtx) -> str | None:
        """Every rank: write `model` as weight `version`; rank 0 then attaches it to `hub` (which must serve that
        version already) and prunes older exports. Returns the export's URI on rank 0, None elsewhere."""
        import ray

        from limr.learner.models import unwrap
        from limr.learner.weight_sync import weight_source

        key = export_key(self.run_id, version)
        files = hf_files(unwrap(model), self.tokenizer) if ctx.is_main else {}
        write_export(weight_source(model), self.store, key, ctx, files, self.shard_bytes)
        if not ctx.is_main:
            return None
        uri = export_uri(self.store, key)
        _, advertised = ray.get(hub.attach.remote(version, uri))
        gone = prune_exports(self.store, self.run_id, self.keep, advertised)
        log.info("weight version %d exported to %s for cold replicas (pruned %s)", version, uri, gone or "none")
        return uri
