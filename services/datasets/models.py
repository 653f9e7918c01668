"""Request/response bodies of the query API (they make the OpenAPI spec precise, which the fuzzer relies on)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from limr.curation.policy import SelectionPolicy


class Page(BaseModel):
    total: int  # items matching, before paging
    limit: int
    offset: int
    next_offset: int | None  # offset of the next page, None on the last one


class RunSummary(BaseModel):
    run_id: str
    created_at: str | None = None
    model: str | None = None
    source: str | None = None


class RunList(Page):
    items: list[RunSummary]


class RunProgress(RunSummary):
    scored: bool  # the scorer has a checkpoint for this run
    events: int = 0
    objects: int = 0
    quarantined: int = 0
    prompts: int = 0
    epochs_seen: int = 0
    epochs_complete: int = 0
    last_update: float | None = None  # unix seconds of the scorer's last ingestion
    last_object_time: float | None = None


class ScoreItem(BaseModel):
    prompt_id: str
    score: float | None  # None: left out (incomplete trajectory)
    left_out: str | None = None


class ScorePage(Page):
    run_id: str
    epochs: int
    items: list[ScoreItem]


class Trajectory(BaseModel):
    run_id: str
    prompt_id: str
    score: float | None
    left_out: str | None
    epochs: int
    correct: list[int]
    total: list[int]
    accuracy: list[float | None]  # None where the prompt had no samples in that epoch
    r_avg: list[float]


class DatasetSummary(BaseModel):
    name: str
    versions: int
    latest: int


class DatasetList(Page):
    items: list[DatasetSummary]


class VersionList(BaseModel):
    name: str
    versions: list[int]


class Diff(BaseModel):
    name: str
    from_version: int
    to_version: int
    added_count: int
    removed_count: int
    kept_count: int
    added: list[str]
    removed: list[str]
    truncated: bool  # lists cut at `limit`


class PublishRequest(SelectionPolicy):
    """Publish a version of this dataset from a run's scores (the scorer's completed epochs)."""

    run: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


Manifest = dict[str, Any]
