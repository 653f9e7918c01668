"""Training checkpoints in the object store: everything to continue a run at the same step with the same data.

Layout (next to the run's events):
    runs/{run_id}/checkpoints/{step:010d}/state.pt   torch.save of trainer state + loop state
    runs/{run_id}/checkpoints/latest.json            {"step": ..., "key": ...}, written after state.pt
`step` is the number of completed steps, i.e. the step a resumed run starts at. The data order needs no
saving beyond the plan's fingerprint (it is a function of seed and epoch), and sampling/shuffling RNGs are
re-seeded from (seed, step, rank) at every step, so a resumed run draws exactly what the original would.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any

import torch

from limr.events.schema import run_prefix
from limr.store import ObjectNotFound, ObjectStore


def checkpoint_key(run_id: str, step: int) -> str:
    return f"{run_prefix(run_id)}checkpoints/{step:010d}/state.pt"


def latest_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}checkpoints/latest.json"


def save_checkpoint(store: ObjectStore, run_id: str, step: int, state: dict[str, Any]) -> str:
    """Upload state (streamed from a temp file: 7B states do not fit a bytes object twice), then the pointer."""
    key = checkpoint_key(run_id, step)
    fd, path = tempfile.mkstemp(suffix=".pt", prefix="limr-ckpt-")
    os.close(fd)
    try:
        torch.save(state, path)
        store.put_file(key, path, "application/octet-stream")
    finally:
        os.unlink(path)
    store.put(latest_key(run_id), json.dumps({"step": step, "key": key}).encode(), "application/json")
    return key


def latest_checkpoint(store: ObjectStore, run_id: str) -> str | None:
    """Key of the newest complete checkpoint of a run, or None."""
    try:
        pointer = json.loads(store.get(latest_key(run_id)))
    except ObjectNotFound:
        return None
    return str(pointer["key"])


def load_checkpoint(store: ObjectStore, key: str) -> dict[str, Any]:
    try:
        data = store.get(key)
    except ObjectNotFound:
        raise FileNotFoundError(f"{store.uri}/{key}: checkpoint not found") from None
    # weights_only=False: the state holds optimizer dicts and plain Python values written by limr itself
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
