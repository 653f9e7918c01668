"""Datasets: list, versions, manifests, streamed downloads, diffs, and authenticated publishing."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Iterator
from typing import Annotated, Literal

import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from limr.curation.policy import DATASET_NAME_RE, SelectionPolicy
from limr.curation.progress import complete_epochs, read_run_prompts
from limr.curation.publish import (
    CorruptManifest,
    DatasetNotFound,
    data_key,
    final_version,
    list_versions,
    publish_version,
    version_status,
)
from limr.curation.state import load_checkpoint
from limr.events.io import EventSchemaError
from limr.events.run import run_finished
from limr.events.schema import run_json_key
from limr.scoring import EmptyRun, EventDataError, count_run, score_counts
from limr.store import ObjectNotFound, ObjectStore
from services.datasets.cache import Cached, VersionCache
from services.datasets.dependencies import (
    CacheDep,
    ListingsDep,
    MetricsDep,
    SettingsDep,
    StoreDep,
    require_read,
    require_write,
)
from services.datasets.models import (
    READ_ERRORS,
    WRITE_ERRORS,
    DatasetList,
    DatasetSummary,
    Diff,
    Manifest,
    PublishRequest,
    VersionInfo,
    VersionList,
)

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=READ_ERRORS)

Name = Annotated[str, Path(pattern=DATASET_NAME_RE.pattern, description="dataset name")]
VersionRef = Annotated[
    str,
    Path(
        pattern=r"^(latest|final|[1-9][0-9]{0,8})$",
        description="version number, 'latest', or 'final' (the newest version of a finished run's full selection)",
    ),
]
VersionNo = Annotated[int, Query(ge=1, le=10**9)]
_read = [Depends(require_read)]


def _versions(store: ObjectStore, name: str) -> list[int]:
    versions = list_versions(store, name)
    if not versions:
        raise HTTPException(404, f"no dataset {name!r}")
    return versions


def _resolve(store: ObjectStore, name: str, ref: str, cache: VersionCache) -> int:
    versions = _versions(store, name)
    if ref == "final":
        final = final_version(store, name, versions, cache.read_manifest)
        if final is None:
            raise HTTPException(404, f"dataset {name!r} has no final version yet (its run is not finished)")
        return final
    version = versions[-1] if ref == "latest" else int(ref)
    if version not in versions:
        raise HTTPException(404, f"dataset {name!r} has no version {version} (versions: {versions})")
    return version


@router.get("", response_model=DatasetList, dependencies=_read)
def datasets(
    store: StoreDep,
    settings: SettingsDep,
    listings: ListingsDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
) -> DatasetList:
    """Every dataset with its number of versions and latest one; the list may be up to `listing_ttl_s` seconds
    old (a publish through this server shows at once)."""
    found = listings.datasets(store)
    names = list(found)
    limit = min(limit, settings.max_page_size)
    items = [
        DatasetSummary(name=n, versions=len(found[n]), latest=found[n][-1]) for n in names[offset : offset + limit]
    ]
    nxt = offset + limit if offset + limit < len(names) else None
    return DatasetList(total=len(names), limit=limit, offset=offset, next_offset=nxt, items=items)


@router.get("/{name}/versions", response_model=VersionList, dependencies=_read)
def versions(name: Name, store: StoreDep, cache: CacheDep) -> VersionList:
    found = _versions(store, name)
    items = []
    for v in found:
        try:
            items.append(_version_info(cache.read_manifest(store, name, v)))
        except CorruptManifest:  # listed with the others, described by none: GET of that version says why (404)
            continue
    final = max((i.version for i in items if i.status == "final"), default=None)
    return VersionList(name=name, versions=found, final=final, items=items)


def _version_info(m: Manifest) -> VersionInfo:
    return VersionInfo(
        version=m["version"],
        status=version_status(m),
        run=m.get("run"),
        epochs_used=m.get("epochs_used"),
        predictor=m.get("predictor"),
        predicted_precision=m.get("predicted_precision"),
        selected=(m.get("counts") or {}).get("selected"),
        created_at=m.get("created_at"),
    )


def _cached(request: Request, cached: Cached, media: str, ref: str, headers: dict[str, str] | None = None) -> Response:
    """The cached body, or 304 when the client already has it (If-None-Match). A numbered version never
    changes (cache it for good); `latest`/`final` may move to another version (revalidate each time)."""
    cache_control = "public, max-age=31536000, immutable" if ref.isdigit() else "no-cache"
    headers = {"ETag": cached.etag, "Cache-Control": cache_control, **(headers or {})}
    if cached.etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(cached.body, media_type=media, headers=headers)


@router.get(
    "/{name}/versions/{version}",
    response_model=Manifest,
    dependencies=_read,
    responses={304: {"description": "not modified (If-None-Match matched the ETag)"}},
)
def manifest(name: Name, version: VersionRef, store: StoreDep, cache: CacheDep, request: Request) -> Response:
    """The version's manifest (ETag: its content hash)."""
    v = _resolve(store, name, version, cache)
    return _cached(request, cache.manifest(store, name, v), "application/json", version)


@router.get(
    "/{name}/versions/{version}/data",
    dependencies=_read,
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}, "application/vnd.apache.parquet": {}}},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
    },
)
def download(
    store: StoreDep,
    cache: CacheDep,
    request: Request,
    name: Name,
    version: VersionRef,
    format: Annotated[Literal["jsonl", "parquet"], Query()] = "jsonl",  # noqa: A002 - the public parameter name
) -> Response:
    """The selected prompt records (JSONL: one record per line); small files from memory, large ones
    streamed from the store. ETag: the file's sha256."""
    v = _resolve(store, name, version, cache)
    media = "application/x-ndjson" if format == "jsonl" else "application/vnd.apache.parquet"
    disposition = {"Content-Disposition": f'attachment; filename="{name}-v{v}.{format}"'}
    cached = cache.file(store, name, v, format)
    if cached is not None:
        return _cached(request, cached, media, version, disposition)
    key = data_key(name, v, format)
    try:
        stream = store.open(key)
    except ObjectNotFound:
        raise HTTPException(404, f"dataset {name!r} v{v} has no {format} file") from None

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(1 << 16):
                yield chunk

    return StreamingResponse(chunks(), media_type=media, headers=disposition)


def _ids(store: ObjectStore, name: str, version: int) -> list[str]:
    data = store.get(data_key(name, version, "parquet"))
    return pq.read_table(io.BytesIO(data), columns=["prompt_id"]).column("prompt_id").to_pylist()


@router.get("/{name}/diff", response_model=Diff, dependencies=_read)
def diff(
    store: StoreDep,
    cache: CacheDep,
    name: Name,
    from_version: Annotated[int, Query(alias="from", ge=1, le=10**9)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=10**9)],
    limit: Annotated[int, Query(ge=0, le=100_000, description="max ids listed per side")] = 1000,
) -> Diff:
    """Prompts added and removed between two versions (ids in sorted order)."""
    a = set(_ids(store, name, _resolve(store, name, str(from_version), cache)))
    b = set(_ids(store, name, _resolve(store, name, str(to_version), cache)))
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
    responses={200: {"description": "an identical version already existed; it is returned"}, **WRITE_ERRORS},
)
def publish(
    store: StoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    listings: ListingsDep,
    name: Name,
    request: PublishRequest,
    response: Response,
) -> Manifest:
    """Select from the run's completed epochs (as ingested by the scorer) and publish a new version.

    A finished run is scored whole, as `limr select --run` does, and the version is final."""
    if not store.exists(run_json_key(request.run)):
        raise HTTPException(404, f"no run {request.run!r}")
    policy = SelectionPolicy.model_validate(request.model_dump(exclude={"run"}))
    prompts, pool_size = read_run_prompts(store, request.run)
    finished = run_finished(store, request.run) is not None
    if finished:
        try:
            result = count_run(store, request.run).score(policy.max_epochs)
        except (EmptyRun, EventSchemaError, EventDataError) as e:
            raise HTTPException(409, f"run {request.run!r} cannot be scored: {e}") from None
    else:
        state = load_checkpoint(store, settings.state_prefix, request.run)
        complete = complete_epochs(state.counts, pool_size) if state else 0
        if state is None or complete == 0:
            raise HTTPException(409, f"run {request.run!r} has no completed epoch ingested by the scorer yet")
        result = score_counts(state.counts, min(complete, policy.max_epochs or complete))
    if not result.prompt_ids:
        raise HTTPException(409, f"run {request.run!r} has no prompt with a complete trajectory")
    try:
        outcome = publish_version(
            store, name, request.run, result, policy, prompts,
            owner=f"api:{socket.gethostname()}:{os.getpid()}", extra={"publisher": "api"}, final=finished,
        )  # fmt: skip
    except ValueError as e:  # a size rule that cannot be applied to this run (e.g. top_k > prompts)
        raise HTTPException(422, str(e)) from None
    if outcome.created:
        listings.published(store)
        metrics.published.labels(name).inc()
    else:
        response.status_code = 200
    return outcome.manifest


__all__ = ["router", "DatasetNotFound"]
