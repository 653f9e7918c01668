"""Runs: list, progress (from the scorer's status), scores with filters and paging, one prompt's trajectory."""

from __future__ import annotations

import json
import math
import threading
from typing import Annotated, Literal

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Depends, HTTPException, Path, Query

from limr.curation.snapshot import read_scores_snapshot, snapshot_key
from limr.curation.state import status_key
from limr.events.run import list_runs, read_run_meta
from limr.events.schema import RUN_ID_RE, run_json_key
from limr.store import ObjectNotFound, ObjectStore
from services.datasets.config import DatasetsSettings
from services.datasets.dependencies import SettingsDep, StoreDep, require_read
from services.datasets.models import READ_ERRORS, RunList, RunProgress, RunSummary, ScoreItem, ScorePage, Trajectory

router = APIRouter(prefix="/v1/runs", tags=["runs"], dependencies=[Depends(require_read)], responses=READ_ERRORS)

RunId = Annotated[str, Path(pattern=RUN_ID_RE.pattern, description="run id")]
Limit = Annotated[int, Query(ge=1, le=100_000, description="page size (capped by the server's max)")]
Offset = Annotated[int, Query(ge=0, le=10**12)]
_cache_lock = threading.Lock()
_snapshots: dict[tuple[str, str], tuple[tuple[float, int], Snapshot]] = {}


class Snapshot:
    """A scores snapshot decoded once: numpy arrays and precomputed sort orders, so a request costs a few
    vectorized passes over the prompts plus the page itself, even for runs of a million prompts."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.ids: list[str] = table.column("prompt_id").to_pylist()
        self.left_out: list[str | None] = table.column("left_out").to_pylist()
        self.score = table.column("score").to_numpy(zero_copy_only=False).astype(np.float64)  # (P,) NaN: left out
        self.row = {pid: i for i, pid in enumerate(self.ids)}
        meta = table.schema.metadata or {}
        self.epochs = int(meta.get(b"epochs", b"0"))
        self.r_avg = [float(x) for x in meta.get(b"r_avg", b"").decode().split(",") if x]
        self._orders: dict[str, np.ndarray] = {}

    def order(self, sort: str) -> np.ndarray:
        """Row order for `sort`; left-out prompts (NaN) last, ties broken by prompt id for stable pages."""
        if sort not in self._orders:
            ids = np.array(self.ids, dtype=str)
            if sort == "prompt_id":
                self._orders[sort] = np.argsort(ids, kind="stable")
            else:
                self._orders[sort] = np.lexsort((ids, -self.score if sort == "-score" else self.score))
        return self._orders[sort]


def _page(total: int, limit: int, offset: int, settings: DatasetsSettings) -> tuple[int, int | None]:
    limit = min(limit, settings.max_page_size)
    nxt = offset + limit if offset + limit < total else None
    return limit, nxt


def _summary(store: ObjectStore, run_id: str) -> RunSummary:
    try:
        meta = read_run_meta(store, run_id)
    except ObjectNotFound:
        raise HTTPException(404, f"no run {run_id!r}") from None
    except ValueError as e:
        return RunSummary(run_id=run_id, source=f"unreadable run.json: {e}")
    return RunSummary(run_id=run_id, created_at=meta.created_at.isoformat(), model=meta.model, source=meta.source)


@router.get("", response_model=RunList)
def runs(
    store: StoreDep,
    settings: SettingsDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunList:
    ids = list_runs(store)
    limit, nxt = _page(len(ids), limit, offset, settings)
    items = [_summary(store, r) for r in ids[offset : offset + limit]]
    return RunList(total=len(ids), limit=limit, offset=offset, next_offset=nxt, items=items)


@router.get("/{run_id}", response_model=RunProgress)
def run_progress(
    run_id: RunId,
    store: StoreDep,
    settings: SettingsDep,
) -> RunProgress:
    summary = _summary(store, run_id)
    try:
        status = json.loads(store.get(status_key(settings.state_prefix, run_id)))
    except ObjectNotFound:
        return RunProgress(**summary.model_dump(), scored=False)
    fields = {k: status.get(k) for k in RunProgress.model_fields if k in status and k not in RunSummary.model_fields}
    return RunProgress(**summary.model_dump(), scored=True, **fields)


def _snapshot(store: ObjectStore, settings: DatasetsSettings, run_id: str) -> Snapshot:
    """The scorer's scores snapshot, cached until the object changes."""
    key = snapshot_key(settings.state_prefix, run_id)
    info = next((i for i in store.list(key) if i.key == key), None)
    if info is None:
        if not store.exists(run_json_key(run_id)):
            raise HTTPException(404, f"no run {run_id!r}")
        raise HTTPException(409, f"run {run_id!r} has no scores yet (no completed epoch ingested by the scorer)")
    stamp = (info.last_modified, info.size)
    with _cache_lock:
        hit = _snapshots.get((store.uri, key))
        if hit and hit[0] == stamp:
            return hit[1]
    snap = Snapshot(read_scores_snapshot(store, settings.state_prefix, run_id))
    with _cache_lock:
        _snapshots[(store.uri, key)] = (stamp, snap)
    return snap


@router.get("/{run_id}/scores", response_model=ScorePage)
def scores(
    store: StoreDep,
    settings: SettingsDep,
    run_id: RunId,
    min_score: Annotated[float | None, Query(allow_inf_nan=False, description="keep score >= this")] = None,
    max_score: Annotated[float | None, Query(allow_inf_nan=False, description="keep score <= this")] = None,
    include_left_out: Annotated[bool, Query(description="list left-out prompts (score null) too")] = False,
    sort: Annotated[Literal["score", "-score", "prompt_id"], Query()] = "-score",
    limit: Limit = 100,
    offset: Offset = 0,
) -> ScorePage:
    snap = _snapshot(store, settings, run_id)
    scored = ~np.isnan(snap.score)
    mask = scored.copy()
    with np.errstate(invalid="ignore"):
        if min_score is not None:
            mask &= snap.score >= min_score
        if max_score is not None:
            mask &= snap.score <= max_score
    if include_left_out and min_score is None and max_score is None:
        mask |= ~scored
    order = snap.order(sort)
    rows = order[mask[order]]
    limit, nxt = _page(len(rows), limit, offset, settings)
    items = [
        ScoreItem(prompt_id=snap.ids[i], score=float(snap.score[i]) if scored[i] else None, left_out=snap.left_out[i])
        for i in rows[offset : offset + limit].tolist()
    ]
    return ScorePage(
        run_id=run_id, epochs=snap.epochs, total=len(rows), limit=limit, offset=offset, next_offset=nxt, items=items
    )


@router.get("/{run_id}/prompts/{prompt_id}", response_model=Trajectory)
def trajectory(
    store: StoreDep,
    settings: SettingsDep,
    run_id: RunId,
    prompt_id: Annotated[str, Path(min_length=1, max_length=512)],
) -> Trajectory:
    snap = _snapshot(store, settings, run_id)
    i = snap.row.get(prompt_id)
    if i is None:
        raise HTTPException(404, f"run {run_id!r} has no prompt {prompt_id!r}")
    row = snap.table.slice(i, 1).to_pylist()[0]
    acc = [c / t if t else None for c, t in zip(row["correct"], row["total"], strict=True)]
    score = row["score"] if row["score"] is None or math.isfinite(row["score"]) else None
    return Trajectory(
        run_id=run_id,
        prompt_id=prompt_id,
        score=score,
        left_out=row["left_out"],
        epochs=snap.epochs,
        correct=row["correct"],
        total=row["total"],
        accuracy=acc,
        r_avg=snap.r_avg,
    )
