"""Curated dataset versions in the store: `datasets/{name}/v{N}/{data.jsonl,data.parquet,manifest.json}`.

Versions are immutable and publishing is idempotent: the content hash covers the inputs that decide the
selection (run, epochs used, policy) and the selected records, so publishing the same thing twice returns
the existing version instead of adding one. `manifest.json` is written last; a version without one is
invisible and its number is reused by the next publisher. Two publishers racing on one name each claim a
version number with a random token before writing data (claim, read back, proceed only if it is ours).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from limr.curation.policy import SelectionPolicy, check_dataset_name
from limr.curation.selecting import select_prompts
from limr.events.io import PromptRecord
from limr.scoring import ScoreResult
from limr.store import ObjectNotFound, ObjectStore

VersionStatus = Literal["provisional", "final", "interim"]  # see version_status

DATASETS_PREFIX = "datasets/"
MANIFEST_VERSION = 1
_VERSION_KEY_RE = re.compile(r"^datasets/(?P<name>[^/]+)/v(?P<version>[1-9]\d*)/manifest\.json$")
_HIST_EDGES = np.linspace(0.0, 1.0, 21)
_STALE_CLAIM_S = 120.0
_local_lock = threading.Lock()


class DatasetNotFound(LookupError):
    """No such dataset or version."""


@dataclass(frozen=True)
class PublishOutcome:
    manifest: dict[str, Any]
    created: bool  # False: an identical version already existed and was returned


def version_prefix(name: str, version: int) -> str:
    return f"{DATASETS_PREFIX}{check_dataset_name(name)}/v{version}/"


def list_datasets(store: ObjectStore) -> dict[str, list[int]]:
    """Dataset name -> published versions (ascending). Only versions with a manifest count."""
    out: dict[str, list[int]] = {}
    for info in store.list(DATASETS_PREFIX):
        m = _VERSION_KEY_RE.match(info.key)
        if m:
            out.setdefault(m["name"], []).append(int(m["version"]))
    return {name: sorted(vs) for name, vs in sorted(out.items())}


def list_versions(store: ObjectStore, name: str) -> list[int]:
    """The published versions of dataset `name` (ascending); only versions with a manifest count."""
    check_dataset_name(name)
    found = []
    for info in store.list(f"{DATASETS_PREFIX}{name}/"):
        m = _VERSION_KEY_RE.match(info.key)
        if m and m["name"] == name:
            found.append(int(m["version"]))
    return sorted(found)


class CorruptManifest(DatasetNotFound):
    """A manifest.json that is not a limr manifest of that version: readers treat the version as absent."""


_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str, "version": int, "run": str, "epochs_used": int, "content_hash": str, "files": dict,
    "counts": dict, "policy": dict,
}  # fmt: skip


def read_manifest(store: ObjectStore, name: str, version: int) -> dict[str, Any]:
    """The manifest of a version, checked for what readers use (a hostile or torn one is CorruptManifest)."""
    key = version_prefix(name, version) + "manifest.json"
    try:
        raw = store.get(key)
    except ObjectNotFound:
        raise DatasetNotFound(f"dataset {name!r} has no version {version}") from None
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise CorruptManifest(f"{store.uri}/{key}: not JSON ({type(e).__name__})") from None
    if not isinstance(manifest, dict):
        raise CorruptManifest(f"{store.uri}/{key}: not a JSON object")
    for field, kind in _MANIFEST_FIELDS.items():
        value = manifest.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CorruptManifest(
                f"{store.uri}/{key}: field {field!r} missing or not a {getattr(kind, '__name__', kind)}"
            )
    if manifest["name"] != name or manifest["version"] != version:
        raise CorruptManifest(
            f"{store.uri}/{key}: names {manifest['name']!r} v{manifest['version']}, not {name!r} v{version}"
        )
    for fname in ("data.jsonl", "data.parquet"):
        info = manifest["files"].get(fname)
        if not (isinstance(info, dict) and isinstance(info.get("bytes"), int) and isinstance(info.get("sha256"), str)):
            raise CorruptManifest(f"{store.uri}/{key}: files.{fname} needs bytes and sha256")
    if not isinstance(manifest["counts"].get("selected"), int):
        raise CorruptManifest(f"{store.uri}/{key}: counts.selected missing")
    return manifest


def version_status(manifest: dict[str, Any]) -> VersionStatus:
    """Which kind of version a manifest describes.

    - `provisional`: the final LIM selection predicted from a run's first epochs (early LIM, `provisional: true`);
    - `final`: LIM over every epoch of a finished run (`final: true`);
    - `interim`: LIM over the epochs complete so far of a run still going (or not known to have finished).
    """
    if manifest.get("provisional"):
        return "provisional"
    return "final" if manifest.get("final") else "interim"


def final_version(
    store: ObjectStore,
    name: str,
    versions: list[int] | None = None,
    read: Callable[[ObjectStore, str, int], dict[str, Any]] = read_manifest,
) -> int | None:
    """The newest version whose manifest says `final: true` (a finished run's full selection), or None.

    `versions` and `read` let a caller pass a listing it has and a caching manifest reader."""
    for v in reversed(list_versions(store, name) if versions is None else versions):
        try:
            if read(store, name, v).get("final"):
                return v
        except CorruptManifest:  # a version nobody can read is no final version
            continue
    return None


def wait_for_final(store: ObjectStore, name: str, timeout_s: float, poll_s: float = 1.0) -> dict[str, Any]:
    """Block until dataset `name` has a final version (the scorer publishes one once the run is finished
    and fully scored); returns its manifest. Raises TimeoutError after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        version = final_version(store, name)
        if version is not None:
            return read_manifest(store, name, version)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{store.uri}: dataset {name!r} has no final version after {timeout_s:g} s")
        time.sleep(poll_s)


def data_key(name: str, version: int, fmt: str) -> str:
    return version_prefix(name, version) + ("data.parquet" if fmt == "parquet" else "data.jsonl")


def score_histogram(scores: np.ndarray) -> dict[str, Any]:
    """20 equal bins over [0, 1]; LIM scores can fall below 0, those are counted apart."""
    finite = scores[np.isfinite(scores)]
    counts, _ = np.histogram(np.clip(finite[finite >= 0.0], 0.0, 1.0), bins=_HIST_EDGES)
    return {
        "edges": [round(float(e), 6) for e in _HIST_EDGES],
        "counts": [int(c) for c in counts],
        "below_zero": int((finite < 0.0).sum()),
    }


def build_records(
    result: ScoreResult, selected: list[str], prompts: list[PromptRecord] | None
) -> list[dict[str, Any]]:
    """Selected prompt records in pool order (prompts.parquet), each with its LIM score."""
    score_of = {pid: float(s) for pid, s in zip(result.prompt_ids, result.scores, strict=True)}
    chosen = set(selected)
    if prompts:
        order = [p for p in prompts if p.prompt_id in chosen]
        known = {p.prompt_id for p in order}
        extra = [pid for pid in selected if pid not in known]  # scored but absent from prompts.parquet
        rows: list[dict[str, Any]] = [
            {"prompt_id": p.prompt_id, "prompt": p.prompt, "answer": p.answer, "source": p.source} for p in order
        ]
        rows += [{"prompt_id": pid, "prompt": None, "answer": None, "source": None} for pid in sorted(extra)]
    else:
        rows = [{"prompt_id": pid, "prompt": None, "answer": None, "source": None} for pid in sorted(chosen)]
    for row in rows:
        row["score"] = score_of.get(row["prompt_id"])
    return rows


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False, sort_keys=True).encode() + b"\n" for r in records)


def _parquet(records: list[dict[str, Any]]) -> bytes:
    table = pa.table(
        {
            "prompt_id": pa.array([r["prompt_id"] for r in records], pa.string()),
            "prompt": pa.array([r["prompt"] for r in records], pa.string()),
            "answer": pa.array([r["answer"] for r in records], pa.string()),
            "source": pa.array([r["source"] for r in records], pa.string()),
            "score": pa.array([r["score"] for r in records], pa.float64()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def content_hash(run_id: str, epochs_used: int, policy: SelectionPolicy, jsonl: bytes, final: bool = False) -> str:
    inputs: dict[str, Any] = {"run": run_id, "epochs_used": epochs_used, "policy": policy.selection_dict()}
    if final:  # a final version is its own version even when a running one selected the same prompts
        inputs["final"] = True
    inputs_json = json.dumps(inputs, sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(inputs_json + b"\n" + jsonl).hexdigest()


def publish_version(
    store: ObjectStore,
    name: str,
    run_id: str,
    result: ScoreResult,
    policy: SelectionPolicy,
    prompts: list[PromptRecord] | None,
    *,
    owner: str = "limr",
    extra: dict[str, Any] | None = None,
    final: bool = False,
) -> PublishOutcome:
    """Select with `policy` and publish a new version of `name`, unless an identical one exists.

    `final`: `result` scores a finished run's every epoch as `limr score` does (`limr.scoring.count_run`);
    the manifest says `final: true`, and readers waiting for the run's dataset take that version.
    """
    check_dataset_name(name)
    pool_ids = [p.prompt_id for p in prompts] if prompts else None
    _, selected = select_prompts(
        result, policy.strategy, policy.criterion(), seed=policy.seed, pool_ids=pool_ids, band=policy.pass_band()
    )
    records = build_records(result, selected, prompts)
    jsonl = _jsonl(records)
    digest = content_hash(run_id, result.epochs, policy, jsonl, final)
    with _local_lock:
        versions = list_versions(store, name)
        for v in reversed(versions):
            manifest = read_manifest(store, name, v)
            if manifest.get("content_hash") == digest:
                return PublishOutcome(manifest, created=False)
        version = _claim_next_version(store, name, versions[-1] if versions else 0, owner)
        prefix = version_prefix(name, version)
        parquet = _parquet(records)
        store.put(prefix + "data.jsonl", jsonl, "application/x-ndjson")
        store.put(prefix + "data.parquet", parquet, "application/vnd.apache.parquet")
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "name": name,
            "version": version,
            "run": run_id,
            "epochs_used": int(result.epochs),
            "final": final,
            "policy": policy.selection_dict(),
            "counts": {
                "prompts_scored": len(result.prompt_ids),
                "prompts_left_out": len(result.left_out),
                "selected": len(records),
            },
            "score_histogram": score_histogram(np.asarray(result.scores, dtype=np.float64)),
            "content_hash": digest,
            "files": {
                "data.jsonl": {"bytes": len(jsonl), "sha256": hashlib.sha256(jsonl).hexdigest()},
                "data.parquet": {"bytes": len(parquet), "sha256": hashlib.sha256(parquet).hexdigest()},
            },
            "created_at": datetime.now(UTC).isoformat(),
            "previous_version": versions[-1] if versions else None,
            **(extra or {}),
        }
        if not store.put_if_absent(
            prefix + "manifest.json", json.dumps(manifest, indent=2).encode(), "application/json"
        ):
            raise RuntimeError(
                f"{store.uri}/{prefix}manifest.json: written by another publisher while we held the claim"
            )
        store.delete(prefix + "_claim")
        return PublishOutcome(manifest, created=True)


def _claim_next_version(store: ObjectStore, name: str, latest: int, owner: str) -> int:
    """Reserve the first free version number after `latest`: unique across processes and machines.

    The claim is the store's conditional create (`put_if_absent`: exclusive on disk, `If-None-Match: *` on
    S3), so of racing publishers exactly one holds a number. A claim left by a crashed publisher is taken
    over when it is ours (same `owner`: the restarted scorer) or older than _STALE_CLAIM_S: the takers race on
    a conditional `_takeover-{token}` object named after that claim, so exactly one of them gets it. A number
    whose manifest exists is never claimed (checked again after the claim: a publisher that had just finished
    may have released its claim between our check and our create).
    """
    version = latest + 1
    while True:
        prefix = version_prefix(name, version)
        if not store.exists(prefix + "manifest.json") and _claim(store, prefix, owner):
            if not store.exists(prefix + "manifest.json"):
                return version
            store.delete(prefix + "_claim")  # it was complete: our claim was on a finished version
        version += 1


def _claim(store: ObjectStore, prefix: str, owner: str) -> bool:
    """Hold `prefix`'s `_claim` (a fresh one, or a stale one taken over); False while another holds it."""
    claim = prefix + "_claim"
    mine = json.dumps({"owner": owner, "token": secrets.token_hex(16)}).encode()
    if store.put_if_absent(claim, mine, "application/json"):
        return True
    try:
        held = json.loads(store.get(claim))
        holder, token = held.get("owner"), str(held.get("token"))
        age = next((time.time() - i.last_modified for i in store.list(claim) if i.key == claim), 0.0)
    except (ObjectNotFound, ValueError, AttributeError):
        return False  # released (or torn) meanwhile: the caller moves on; a later publish fills the number
    if holder != owner and age < _STALE_CLAIM_S:
        return False  # someone else is writing this version right now
    if not store.put_if_absent(prefix + f"_takeover-{token[:64]}", mine, "application/json"):
        return False  # another publisher took this stale claim over
    store.put(claim, mine, "application/json")
    return True
