"""The scorer's per-run checkpoint: accumulator, cursor and ingested keys in ONE object.

Exactly-once by object key rests on this: an event object counts iff its key is in `ingested`, and the
counts that include it are written in the same atomic PUT. A crash before the PUT loses only in-memory work
that is redone from the previous checkpoint; a crash after it never re-reads what it covers.

Format (binary, versioned): MAGIC, u64 header length, header JSON, counts blob (`EpochCounts.to_bytes()`,
zstd-compressed), sha256 of everything before it. A torn or foreign object fails the digest and is reported,
never half-read.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from limr.events.schema import check_run_id
from limr.scoring import EpochCounts
from limr.store import ObjectNotFound, ObjectStore

MAGIC = b"LIMRCKPT\x01"
_LEN = struct.Struct("<Q")


class CheckpointError(RuntimeError):
    """A checkpoint object that cannot be decoded (corrupt, truncated or from an unknown version)."""


@dataclass
class QuarantineRecord:
    """An object the scorer refused, and why. Quarantined keys are never retried automatically."""

    key: str
    error: str
    at: float  # unix seconds when quarantined

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "error": self.error, "at": self.at}


@dataclass
class RunState:
    """Everything the scorer knows about one run; persisted as a whole by `save_checkpoint`."""

    run_id: str
    counts: EpochCounts = field(default_factory=EpochCounts)
    cursor: str | None = None  # greatest key ingested or quarantined (listing resumes after it)
    ingested: set[str] = field(default_factory=set)  # every event key counted, by full key
    quarantined: dict[str, QuarantineRecord] = field(default_factory=dict)
    events: int = 0  # event rows counted
    last_object_time: float | None = None  # last_modified of the newest ingested object
    last_update: float | None = None  # wall time of the last ingestion
    scored_epochs: int = 0  # completed epochs that scores/datasets were last computed for
    scored_events: int = 0  # samples within those epochs then (a late object changes it: rescore)
    finished_epochs: int | None = None  # the run's _FINISHED marker was seen (its epoch count); None: running
    final_objects: int | None = None  # objects ingested when the final datasets were last published
    final_error: str | None = None  # why the finished run has no final dataset (e.g. unknown prompt ids)

    @property
    def objects(self) -> int:
        return len(self.ingested)

    def seen(self, key: str) -> bool:
        return key in self.ingested or key in self.quarantined


def checkpoint_key(state_prefix: str, run_id: str) -> str:
    return f"{state_prefix}/checkpoints/{check_run_id(run_id)}.ckpt"


def encode_checkpoint(state: RunState) -> bytes:
    header = {
        "version": 1,
        "run_id": state.run_id,
        "cursor": state.cursor,
        "ingested": sorted(state.ingested),
        "quarantined": [r.to_dict() for r in sorted(state.quarantined.values(), key=lambda r: r.key)],
        "events": state.events,
        "last_object_time": state.last_object_time,
        "last_update": state.last_update,
        "scored_epochs": state.scored_epochs,
        "scored_events": state.scored_events,
        "finished_epochs": state.finished_epochs,
        "final_objects": state.final_objects,
        "final_error": state.final_error,
        "saved_at": time.time(),
    }
    counts = state.counts.to_bytes()
    header["counts_bytes"] = len(counts)  # zstd below: small integer counts compress ~10x
    head = json.dumps(header, separators=(",", ":")).encode()
    body = MAGIC + _LEN.pack(len(head)) + head + pa.compress(counts, codec="zstd", asbytes=True)
    return bytes(body) + hashlib.sha256(body).digest()


def decode_checkpoint(data: bytes, where: str = "checkpoint") -> RunState:
    if len(data) < len(MAGIC) + _LEN.size + 32 or not data.startswith(MAGIC):
        raise CheckpointError(f"{where}: not a limr scorer checkpoint (bad magic or too short)")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"{where}: checksum mismatch (truncated or corrupted)")
    (n,) = _LEN.unpack_from(body, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    try:
        header = json.loads(body[start : start + n])
        raw = pa.decompress(body[start + n :], header["counts_bytes"], codec="zstd", asbytes=True)
        counts = EpochCounts.from_bytes(raw)
    except (ValueError, KeyError, pa.ArrowException) as e:
        raise CheckpointError(f"{where}: undecodable header or counts: {e}") from None
    if header.get("version") != 1:
        raise CheckpointError(f"{where}: unsupported checkpoint version {header.get('version')!r}")
    return RunState(
        run_id=header["run_id"],
        counts=counts,
        cursor=header["cursor"],
        ingested=set(header["ingested"]),
        quarantined={q["key"]: QuarantineRecord(q["key"], q["error"], q["at"]) for q in header["quarantined"]},
        events=header["events"],
        last_object_time=header["last_object_time"],
        last_update=header["last_update"],
        scored_epochs=header["scored_epochs"],
        scored_events=header["scored_events"],
        finished_epochs=header.get("finished_epochs"),  # absent in checkpoints of earlier scorers
        final_objects=header.get("final_objects"),
        final_error=header.get("final_error"),
    )


def load_checkpoint(store: ObjectStore, state_prefix: str, run_id: str) -> RunState | None:
    """The run's last checkpoint, or None when it has none yet."""
    key = checkpoint_key(state_prefix, run_id)
    try:
        data = store.get(key)
    except ObjectNotFound:
        return None
    state = decode_checkpoint(data, f"{store.uri}/{key}")
    if state.run_id != run_id:
        raise CheckpointError(f"{store.uri}/{key}: holds run {state.run_id!r}, expected {run_id!r}")
    return state


def save_checkpoint(store: ObjectStore, state_prefix: str, state: RunState) -> None:
    """One PUT: readers (and a restarted scorer) see the previous or the new state, never a mix."""
    store.put(checkpoint_key(state_prefix, state.run_id), encode_checkpoint(state))
