"""Runs: list, progress (from the scorer's status), scores with filters and paging, one prompt's trajectory."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from limr.events.run import read_run_meta
from limr.events.schema import RUN_ID_RE
from limr.store import ObjectNotFound, ObjectStore
from limr.view.runs import read_run_status
from limr.view.scores import load_run_scores
from services.datasets.config import DatasetsSettings
from services.datasets.dependencies import ListingsDep, SettingsDep, StoreDep, require_read
from services.datasets.models import READ_ERRORS, RunList, RunProgress, RunSummary, ScoreItem, ScorePage, Trajectory

router = APIRouter(prefix="/v1/runs", tags=["runs"], dependencies=[Depends(require_read)], responses=READ_ERRORS)

RunId = Annotated[str, Path(pattern=RUN_ID_RE.pattern, description="run id")]
Limit = Annotated[int, Query(ge=1, le=100_000, description="page size (capped by the server's max)")]
Offset = Annotated[int, Query(ge=0, le=10**12)]


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
    listings: ListingsDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunList:
    """Every run with a run.json, in id order; the list may be up to `listing_ttl_s` seconds old."""
    ids = listings.runs(store)
    limit, nxt = _page(len(ids), limit, offset, settings)
    items = []
    for run_id in ids[offset : offset + limit]:
        try:
            items.append(_summary(store, run_id))
        except HTTPException:  # deleted since the (possibly cached) listing
            continue
    return RunList(total=len(ids), limit=limit, offset=offset, next_offset=nxt, items=items)


@router.get("/{run_id}", response_model=RunProgress)
def run_progress(
    run_id: RunId,
    store: StoreDep,
    settings: SettingsDep,
) -> RunProgress:
    summary = _summary(store, run_id)
    status = read_run_status(store, settings.state_prefix, run_id)
    if status is None:
        return RunProgress(**summary.model_dump(), scored=False)
    fields = {k: status.get(k) for k in RunProgress.model_fields if k in status and k not in RunSummary.model_fields}
    return RunProgress.model_validate({**summary.model_dump(), "scored": True, **fields})


@router.get("/{run_id}/scores", response_model=ScorePage)
def scores(
    store: StoreDep,
    settings: SettingsDep,
    run_id: RunId,
    min_score: Annotated[float | None, Query(allow_inf_nan=False, description="keep score >= this")] = None,
    max_score: Annotated[float | None, Query(allow_inf_nan=False, description="keep score <= this")] = None,
    include_left_out: Annotated[bool, Query(description="list left-out prompts (score null) too")] = False,
    q: Annotated[
        str | None, Query(max_length=500, description="case-insensitive substring of the prompt text or id")
    ] = None,
    source: Annotated[str | None, Query(max_length=500, description="only prompts of this source")] = None,
    sort: Annotated[Literal["score", "-score", "prompt_id"], Query()] = "-score",
    limit: Limit = 100,
    offset: Offset = 0,
) -> ScorePage:
    """LIM scores of the completed epochs with each prompt's text and source, filtered, sorted, paged."""
    snap = load_run_scores(store, settings.state_prefix, run_id)
    rows = snap.rows(min_score, max_score, include_left_out, q, source, sort)
    limit, nxt = _page(len(rows), limit, offset, settings)
    items = [ScoreItem.model_validate(snap.item(i)) for i in rows[offset : offset + limit].tolist()]
    return ScorePage(
        run_id=run_id, epochs=snap.epochs, sources=snap.sources, total=len(rows), limit=limit, offset=offset,
        next_offset=nxt, items=items,
    )  # fmt: skip


@router.get("/{run_id}/prompts/{prompt_id}", response_model=Trajectory)
def trajectory(
    store: StoreDep,
    settings: SettingsDep,
    run_id: RunId,
    prompt_id: Annotated[str, Path(min_length=1, max_length=512)],
) -> Trajectory:
    """One prompt's text, source, per-epoch counts and accuracy, LIM score, and the run's r_avg."""
    snap = load_run_scores(store, settings.state_prefix, run_id)
    return Trajectory.model_validate({"run_id": run_id, **snap.trajectory(prompt_id)})
