"""Datasets: list, versions, manifests, streamed downloads, diffs, and authenticated publishing."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Iterator
from typing import Annotated, Literal

import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse

from limr.curation.checkpoint import load_checkpoint
from limr.curation.policy import DATASET_NAME_RE, SelectionPolicy
from limr.curation.progress import complete_epochs, read_run_prompts
from limr.curation.publish import (
    DatasetNotFound,
    data_key,
    list_datasets,
    list_versions,
    publish_version,
    read_manifest,
)
from limr.scoring import score_counts
from limr.store import ObjectNotFound, ObjectStore
from services.datasets.dependencies import MetricsDep, SettingsDep, StoreDep, require_read, require_write
from services.datasets.models import DatasetList, DatasetSummary, Diff, Manifest, PublishRequest, VersionList

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

Name = Annotated[str, Path(pattern=DATASET_NAME_RE.pattern, description="dataset name")]
VersionRef = Annotated[str, Path(pattern=r"^(latest|[1-9][0-9]{0,8})$", description="version number or 'latest'")]
VersionNo = Annotated[int, Query(ge=1, le=10**9)]
_read = [Depends(require_read)]


def _versions(store: ObjectStore, name: str) -> list[int]:
    versions = list_versions(store, name)
    if not versions:
        raise HTTPException(404, f"no dataset {name!r}")
    return versions


def _resolve(store: ObjectStore, name: str, ref: str) -> int:
    versions = _versions(store, name)
    version = versions[-1] if ref == "latest" else int(ref)
    if version not in versions:
        raise HTTPException(404, f"dataset {name!r} has no version {version} (versions: {versions})")
    return version


@router.get("", response_model=DatasetList, dependencies=_read)
def datasets(
    store: StoreDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
) -> DatasetList:
    found = list_datasets(store)
    names = list(found)
    limit = min(limit, settings.max_page_size)
    items = [
        DatasetSummary(name=n, versions=len(found[n]), latest=found[n][-1]) for n in names[offset : offset + limit]
    ]
    nxt = offset + limit if offset + limit < len(names) else None
    return DatasetList(total=len(names), limit=limit, offset=offset, next_offset=nxt, items=items)


@router.get("/{name}/versions", response_model=VersionList, dependencies=_read)
def versions(name: Name, store: StoreDep) -> VersionList:
    return VersionList(name=name, versions=_versions(store, name))


@router.get("/{name}/versions/{version}", response_model=Manifest, dependencies=_read)
def manifest(name: Name, version: VersionRef, store: StoreDep) -> Manifest:
    return read_manifest(store, name, _resolve(store, name, version))


@router.get(
    "/{name}/versions/{version}/data",
    dependencies=_read,
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "application/vnd.apache.parquet": {}}}},
)
def download(
    store: StoreDep,
    name: Name,
    version: VersionRef,
    format: Annotated[Literal["jsonl", "parquet"], Query()] = "jsonl",  # noqa: A002 - the public parameter name
) -> StreamingResponse:
    """The selected prompt records, streamed from the store (JSONL: one record per line)."""
    v = _resolve(store, name, version)
    key = data_key(name, v, format)
    try:
        stream = store.open(key)
    except ObjectNotFound:
        raise HTTPException(404, f"dataset {name!r} v{v} has no {format} file") from None

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(1 << 16):
                yield chunk

    media = "application/x-ndjson" if format == "jsonl" else "application/vnd.apache.parquet"
    filename = f"{name}-v{v}.{format}"
    return StreamingResponse(
        chunks(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _ids(store: ObjectStore, name: str, version: int) -> list[str]:
    data = store.get(data_key(name, version, "parquet"))
    return pq.read_table(io.BytesIO(data), columns=["prompt_id"]).column("prompt_id").to_pylist()


@router.get("/{name}/diff", response_model=Diff, dependencies=_read)
def diff(
    store: StoreDep,
    name: Name,
    from_version: Annotated[int, Query(alias="from", ge=1, le=10**9)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=10**9)],
    limit: Annotated[int, Query(ge=0, le=100_000, description="max ids listed per side")] = 1000,
) -> Diff:
    """Prompts added and removed between two versions (ids in sorted order)."""
    a = set(_ids(store, name, _resolve(store, name, str(from_version))))
    b = set(_ids(store, name, _resolve(store, name, str(to_version))))
    added, removed = sorted(b - a), sorted(a - b)
    return Diff(
        name=name,
        from_version=from_version,
        to_version=to_version,
        added_count=len(added),
        removed_count=len(removed),
        kept_count=len(a & b),
        added=added[:limit],
        removed=removed[:limit],
        truncated=len(added) > limit or len(removed) > limit,
    )


@router.post(
    "/{name}/versions",
    response_model=Manifest,
    status_code=201,
    dependencies=[Depends(require_write)],
    responses={200: {"description": "an identical version already existed; it is returned"}},
)
def publish(
    store: StoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    name: Name,
    request: PublishRequest,
    response: Response,
) -> Manifest:
    """Select from the run's completed epochs (as ingested by the scorer) and publish a new version."""
    if not store.exists(f"runs/{request.run}/run.json"):
        raise HTTPException(404, f"no run {request.run!r}")
    state = load_checkpoint(store, settings.state_prefix, request.run)
    prompts, pool_size = read_run_prompts(store, request.run)
    complete = complete_epochs(state.counts, pool_size) if state else 0
    if state is None or complete == 0:
        raise HTTPException(409, f"run {request.run!r} has no completed epoch ingested by the scorer yet")
    policy = SelectionPolicy.model_validate(request.model_dump(exclude={"run"}))
    result = score_counts(state.counts, min(complete, policy.max_epochs or complete))
    if not result.prompt_ids:
        raise HTTPException(409, f"run {request.run!r} has no prompt with a complete trajectory")
    try:
        outcome = publish_version(
            store, name, request.run, result, policy, prompts,
            owner=f"api:{socket.gethostname()}:{os.getpid()}", extra={"publisher": "api"},
        )  # fmt: skip
    except ValueError as e:  # a size rule that cannot be applied to this run (e.g. top_k > prompts)
        raise HTTPException(422, str(e)) from None
    if outcome.created:
        metrics.published.labels(name).inc()
    else:
        response.status_code = 200
    return outcome.manifest


__all__ = ["router", "DatasetNotFound"]
