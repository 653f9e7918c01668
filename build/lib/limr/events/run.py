"""Run metadata (`run.json`) and lifecycle (`_FINISHED`): readers need only what scoring needs and tolerate
missing optional fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from limr.events.schema import EVENTS_SCHEMA_VERSION, check_run_id, finished_key, run_json_key
from limr.store import ObjectNotFound, ObjectStore

# run.json is a few KiB (the learner's config included); anything much larger is refused before it is parsed,
# so a hostile or runaway writer cannot make every reader (the scorer, the API) allocate without bound.
MAX_RUN_JSON_BYTES = 1 << 20


class RunMeta(BaseModel):
    """Metadata of one training run. Unknown fields are kept (writers evolve faster than readers)."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    schema_version: int = EVENTS_SCHEMA_VERSION
    model: str | None = None
    samples_per_prompt: int | None = Field(default=None, ge=1)
    num_prompts: int | None = Field(default=None, ge=0)
    steps_per_epoch: int | None = Field(default=None, ge=1)
    source: str | None = None  # "learner", "openrlhf-import", "synthetic-demo", ...
    correct: str | None = None  # the correctness rule the writer applied (limr.events.correct), e.g. "reward == 1"
    config: dict[str, Any] = Field(default_factory=dict)


def write_run_meta(store: ObjectStore, meta: RunMeta) -> None:
    check_run_id(meta.run_id)
    store.put(run_json_key(meta.run_id), meta.model_dump_json(indent=2).encode(), "application/json")


def read_run_meta(store: ObjectStore, run_id: str) -> RunMeta:
    key = run_json_key(run_id)
    raw = store.get(key)
    if len(raw) > MAX_RUN_JSON_BYTES:
        raise ValueError(f"{store.uri}/{key}: {len(raw)} bytes, over the {MAX_RUN_JSON_BYTES}-byte limit of run.json")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"{store.uri}/{key}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except (UnicodeDecodeError, RecursionError) as e:  # not UTF-8, or nested deeper than the parser's stack
        raise ValueError(f"{store.uri}/{key}: not a readable JSON document: {type(e).__name__}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{store.uri}/{key}: expected a JSON object")
    data.setdefault("run_id", run_id)
    try:
        return RunMeta.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"{store.uri}/{key}: field {field!r}: {err['msg']}") from None


def list_runs(store: ObjectStore) -> list[str]:
    """Run ids that have a run.json, in key order."""
    return [
        info.key.split("/")[1]
        for info in store.list("runs/")
        if info.key.count("/") == 2 and info.key.endswith("/run.json")
    ]


class RunFinished(BaseModel):
    """The `_FINISHED` marker: the run will write no more events. Written last, after every events object,
    so a reader that sees it and then lists the run's events sees all of them."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    epochs: int = Field(ge=0)  # epochs the run trained (every one has its events in the store)
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def mark_run_finished(store: ObjectStore, run_id: str, epochs: int, **extra: Any) -> RunFinished:
    """Declare the run finished. Call it only once every events object of the run is written."""
    marker = RunFinished(run_id=check_run_id(run_id), epochs=epochs, **extra)
    store.put(finished_key(run_id), marker.model_dump_json(indent=2).encode(), "application/json")
    return marker


def run_finished(store: ObjectStore, run_id: str) -> RunFinished | None:
    """The run's finished marker, or None while it runs (or when it stopped without finishing).

    An unreadable marker is an error naming the object: silently treating a finished run as running would
    keep its final dataset from ever being published.
    """
    key = finished_key(run_id)
    try:
        raw = store.get(key)
    except ObjectNotFound:
        return None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        data.setdefault("run_id", run_id)
        return RunFinished.model_validate(data)
    except (ValueError, ValidationError) as e:
        raise ValueError(f"{store.uri}/{key}: unreadable run-finished marker: {e}") from None
