"""Training checkpoints in the object store: sharded, streamed, and loadable by any number of workers.

Layout (next to the run's events):
    runs/{run_id}/checkpoints/{step:010d}/.metadata        torch.distributed.checkpoint (DCP) index
    runs/{run_id}/checkpoints/{step:010d}/__{rank}_0.distcp  each rank's shard of the tensors
    runs/{run_id}/checkpoints/{step:010d}/extra.pt          small non-tensor state (schedulers, controllers, loop)
    runs/{run_id}/checkpoints/latest.json                   {"step": ..., "key": ...}, written after all of them
`step` is the number of completed steps, i.e. the step a resumed run starts at. Saving: every rank writes its own
shard with DCP into a local temp directory and uploads it (a file stream; multipart on S3), so no rank ever holds
the whole state in memory, let alone twice. Loading: DCP reads into the tensors the new run already allocated
(in place) and reshards by name, so a run may resume on a different number of workers (DDP or FSDP). The data
order needs no saving beyond the plan's fingerprint, and sampling/shuffling RNGs are re-seeded from
(seed, step, rank) at every step, so a resumed run draws exactly what the original would.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp

from limr.events.schema import run_prefix
from limr.learner.dist import DistCtx
from limr.store import ObjectNotFound, ObjectStore

EXTRA = "extra.pt"


def checkpoint_key(run_id: str, step: int) -> str:
    """The key prefix of the checkpoint after `step` completed steps (ends with '/')."""
    return f"{run_prefix(run_id)}checkpoints/{step:010d}/"


def latest_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}checkpoints/latest.json"


def save_checkpoint(
    store: ObjectStore, run_id: str, step: int, tensors: dict[str, Any], extra: dict[str, Any], ctx: DistCtx
) -> str:
    """Every rank: write its shard of `tensors` (DCP state dicts: plain, DDP or FSDP-sharded) and upload it;
    rank 0 also writes `extra` and, once every rank's upload is done, the pointer. Returns the key prefix."""
    key = checkpoint_key(run_id, step)
    local = Path(tempfile.mkdtemp(prefix="limr-ckpt-"))
    try:
        dcp.save(tensors, storage_writer=dcp.FileSystemWriter(str(local), single_file_per_rank=True))
        if ctx.is_main:
            torch.save(extra, local / EXTRA)
        for f in sorted(local.iterdir()):  # this rank's shard (+ the index and extra on rank 0)
            store.put_file(key + f.name, str(f))
    finally:
        shutil.rmtree(local, ignore_errors=True)
    ctx.barrier()  # every shard is in the store before the pointer names the checkpoint
    if ctx.is_main:
        store.put(latest_key(run_id), json.dumps({"step": step, "key": key}).encode(), "application/json")
    return key


def latest_checkpoint(store: ObjectStore, run_id: str) -> str | None:
    """Key of the newest complete checkpoint of a run, or None."""
    try:
        pointer = json.loads(store.get(latest_key(run_id)))
    except ObjectNotFound:
        return None
    return str(pointer["key"])


def read_extra(store: ObjectStore, key: str) -> dict[str, Any]:
    """The checkpoint's small non-tensor state (read before any tensor, to check the run matches)."""
    try:
        data = store.get(key + EXTRA)
    except ObjectNotFound:
        raise FileNotFoundError(f"{store.uri}/{key}: checkpoint not found (no {EXTRA})") from None
    import io

    # weights_only=False: plain Python values written by limr itself
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def load_tensors(store: ObjectStore, key: str, tensors: dict[str, Any]) -> None:
    """Load the checkpoint's tensors into `tensors` in place (DCP state dicts shaped like the ones saved, for
    this run's world size: DCP reads each rank's slices by name, whatever world size wrote them)."""
    local = Path(tempfile.mkdtemp(prefix="limr-ckpt-"))
    try:
        _download(store, key, local)
        dcp.load(tensors, storage_reader=dcp.FileSystemReader(str(local)))
    finally:
        shutil.rmtree(local, ignore_errors=True)


def read_full(store: ObjectStore, key: str) -> dict[str, Any]:
    """The whole checkpoint as plain tensors in one process (inspection and tests; not for 7B-sized runs)."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    local = Path(tempfile.mkdtemp(prefix="limr-ckpt-"))
    try:
        _download(store, key, local)
        dcp_to_torch_save(str(local), str(local / "full.pt"))
        return torch.load(local / "full.pt", map_location="cpu", weights_only=False)
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _download(store: ObjectStore, key: str, dest: Path) -> None:
    """Stream the checkpoint's shard files and index to `dest` (to disk, never whole into memory)."""
    names = [info.key[len(key) :] for info in store.list(key)]
    names = [n for n in names if n and "/" not in n and n != EXTRA]
    if ".metadata" not in names:
        raise FileNotFoundError(f"{store.uri}/{key}: not a checkpoint (no DCP .metadata)")
    for name in names:
        store.get_to_file(key + name, os.path.join(dest, name))
