"""Request/response bodies of the query API (they make the OpenAPI spec precise, which the fuzzer relies on)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from limr.curation.policy import SelectionPolicy


class ErrorBody(BaseModel):
    detail: str | list[Any]  # a message, or FastAPI's list of validation errors (422)


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# The error statuses every data route can answer (the OpenAPI spec tells the truth about them).
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("invalid key"),
    401: _error("missing or invalid bearer token (when LIMR_READ_TOKEN is set)"),
    404: _error("no such run, prompt, dataset or version"),
    409: _error("the run is not scored yet"),
    503: _error("the object store is unreachable, or the scorer's state is unreadable"),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    403: _error("writes are disabled (no LIMR_API_TOKEN configured)"),
    409: _error("the run is not scored yet, or has no prompt with a complete trajectory"),
    422: _error("invalid request, or a policy that cannot apply to this run"),
}


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
    finished: bool = False  # the run wrote its _FINISHED marker and the scorer has seen it
    final_published: bool = False  # the scorer published the run's final datasets (manifest `final: true`)
    final_error: str | None = None  # why a finished run has no final dataset


class ScoreItem(BaseModel):
    prompt_id: str
    score: float | None  # None: left out (incomplete trajectory)
    left_out: str | None = None
    prompt: str | None = None  # the prompt's text (None when the run has no prompts.parquet row for it)
    source: str | None = None  # where the prompt comes from, e.g. `math` or `synthetic/level3`


class ScorePage(Page):
    run_id: str
    epochs: int
    sources: list[str] = []  # every source of the run's prompts (what `source=` can filter on)
    items: list[ScoreItem]


class Trajectory(BaseModel):
    run_id: str
    prompt_id: str
    prompt: str | None  # text, source and reference answer from the run's prompts.parquet (None: not there)
    source: str | None
    answer: str | None
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


class VersionInfo(BaseModel):
    version: int
    # provisional: predicted from a run's first epochs (early LIM); final: from a finished run; interim: from
    # the epochs complete so far of a run still going (limr.curation.publish.version_status)
    status: Literal["provisional", "final", "interim"]
    run: str | None = None
    epochs_used: int | None = None
    predictor: str | None = None  # early-LIM predictor of a provisional version
    predicted_precision: float | None = None  # expected share of a provisional selection the final run keeps
    selected: int | None = None
    created_at: str | None = None


class VersionList(BaseModel):
    name: str
    versions: list[int]
    final: int | None = None  # newest version with `final: true` (a finished run's full selection)
    items: list[VersionInfo] = []  # the same versions, with what each one is


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
