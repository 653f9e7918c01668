"""Training checkpoints in the object store: sharded, streamed, and loadable by any number of workers.

Layout (next to the run's events):
    runs/{run_id}/checkpoints/{step:010d}/.metadata        torch.distributed.checkpoint (DCP) index
    runs/{run_id}/checkpoints/{step:010d}/__{rank}_0.distcp  each rank's shard of the tensors
    runs/{run_id}/checkpoints/{step:010d}/extra.pt          small non-tensor state (schedulers, controllers, loop)
    runs/{run_id}/checkpoints/latest.json                   {"step", "key", "metadata_sha256"}, written last
The pointer is the one truth of where a run resumes (limr train --resume, Ray Train restarts) and holds the
sha256 of DCP's pickled `.metadata`, verified before DCP unpickles it; `extra.pt` is loaded weights_only.
`step` is the number of completed steps, i.e. the step a resumed run starts at. Retention (`run.keep_checkpoints`):
once a new checkpoint's pointer is written, rank 0 deletes all but the newest `keep` complete ones (the one the
pointer names always among them) and any newer leftover of a save that crashed before its pointer.
Saving: every rank writes its own
shard with DCP into a local temp directory and uploads it (a file stream; multipart on S3), so no rank ever holds
the whole state in memory, let alone twice. Loading: DCP reads into the tensors the new run already allocated
(in place) and reshards by name, so a run may resume on a different number of workers (DDP or FSDP). The data
order needs no saving beyond the plan's fingerprint, and sampling/shuffling RNGs are re-seeded from
(seed, step, rank) at every step, so a resumed run draws exactly what the original would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp

from limr.events.schema import checkpoint_key, checkpoints_prefix, latest_checkpoint_key
from limr.learner.dist import DistCtx
from limr.store import ObjectNotFound, ObjectStore

EXTRA = "extra.pt"
METADATA = ".metadata"


class CheckpointIntegrityError(RuntimeError):
    """A checkpoint whose DCP index does not match what the learner recorded when it wrote it."""


def save_checkpoint(
    store: ObjectStore,
    run_id: str,
    step: int,
    tensors: dict[str, Any],
    extra: dict[str, Any],
    ctx: DistCtx,
    keep: int = 0,
) -> str:
    """Every rank: write its shard of `tensors` (DCP state dicts: plain, DDP or FSDP-sharded) and upload it;
    rank 0 also writes `extra` and, once every rank's upload is done, the pointer, then prunes to the newest
    `keep` checkpoints (0: keep all). Returns the key prefix."""
    key = checkpoint_key(run_id, step)
    local = Path(tempfile.mkdtemp(prefix="limr-ckpt-"))
    digest = None
    try:
        dcp.save(tensors, storage_writer=dcp.FileSystemWriter(str(local), single_file_per_rank=True))
        if ctx.is_main:
            torch.save(extra, local / EXTRA)
            digest = _sha256(local / METADATA)
        for f in sorted(local.iterdir()):  # this rank's shard (+ the index and extra on rank 0)
            store.put_file(key + f.name, str(f))
    finally:
        shutil.rmtree(local, ignore_errors=True)
    ctx.barrier()  # every shard is in the store before the pointer names the checkpoint
    if ctx.is_main:
        pointer = {"step": step, "key": key, "metadata_sha256": digest}
        store.put(latest_checkpoint_key(run_id), json.dumps(pointer).encode(), "application/json")
        if keep:
            prune_checkpoints(store, run_id, keep)
    return key


def prune_checkpoints(store: ObjectStore, run_id: str, keep: int) -> list[int]:
    """Delete a run's checkpoints but the newest `keep` complete ones; returns the steps deleted.

    Complete means at or before the step `latest.json` names (a checkpoint's pointer is written only after all of
    it is in the store), and that one is always kept. A checkpoint newer than the pointer is the leftover of a save
    that crashed before its pointer (nothing can resume from it): it goes too. Without a pointer nothing is deleted.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    try:
        pointer = json.loads(store.get(latest_checkpoint_key(run_id)))
    except ObjectNotFound:
        return []
    latest_step = int(pointer["step"])
    prefix = checkpoints_prefix(run_id)
    objects: dict[int, list[str]] = {}
    for info in store.list(prefix):
        head = info.key[len(prefix) :].split("/", 1)[0]
        if head.isdigit():
            objects.setdefault(int(head), []).append(info.key)
    complete = sorted(s for s in objects if s <= latest_step)
    kept = set(complete[-keep:]) | {latest_step}
    gone = sorted(set(objects) - kept)
    for step in gone:
        for key in objects[step]:
            store.delete(key)
    return gone


def latest_checkpoint(store: ObjectStore, run_id: str) -> str | None:
    """Key of the newest complete checkpoint of a run, or None."""
    try:
        pointer = json.loads(store.get(latest_checkpoint_key(run_id)))
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

    # weights_only: the object comes from the store, so no pickle may run code (plain values and tensors only)
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


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
        return torch.load(local / "full.pt", map_location="cpu", weights_only=True)
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _download(store: ObjectStore, key: str, dest: Path) -> None:
    """Stream the checkpoint's shard files and index to `dest` (to disk, never whole into memory)."""
    names = [info.key[len(key) :] for info in store.list(key)]
    names = [n for n in names if n and "/" not in n and n != EXTRA]
    if METADATA not in names:
        raise FileNotFoundError(f"{store.uri}/{key}: not a checkpoint (no DCP .metadata)")
    for name in names:
        store.get_to_file(key + name, os.path.join(dest, name))
    _verify_metadata(store, key, dest / METADATA)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify_metadata(store: ObjectStore, key: str, path: Path) -> None:
    """DCP's `.metadata` is a pickle, which DCP unpickles: before it does, its sha256 must match the one the
    run's pointer (latest.json) recorded when the learner wrote the checkpoint. Both are written only with the
    learner's store credentials (docs/services.md "Least privilege"); the check stops a replaced or torn index
    from being unpickled. A checkpoint the pointer does not name (an older one) is refused unless its pointer
    predates the hash."""
    try:
        pointer = json.loads(store.get(latest_checkpoint_key(_run_of(key))))
    except ObjectNotFound:
        raise CheckpointIntegrityError(f"{store.uri}/{key}: the run has no latest.json to verify against") from None
    if pointer.get("key") != key:
        raise CheckpointIntegrityError(
            f"{store.uri}/{key}: not the run's latest checkpoint ({pointer.get('key')}); resume from latest.json"
        )
    want = pointer.get("metadata_sha256")
    if want is not None and _sha256(path) != want:
        raise CheckpointIntegrityError(f"{store.uri}/{key}{METADATA}: sha256 differs from latest.json's; not loaded")


def _run_of(key: str) -> str:
    return key.split("/")[1]  # runs/{run_id}/checkpoints/{step}/
