"""Arrow schemas and object layout of a run in the store. Version: EVENTS_SCHEMA_VERSION.

Layout under a store root:
    runs/{run_id}/run.json                                   run metadata
    runs/{run_id}/prompts.parquet                            prompt_id, prompt, answer, source
    runs/{run_id}/events/{step:010d}-{part:04d}.parquet      one row per rollout sample

Readers rely only on REQUIRED_EVENT_COLUMNS; writers may add nullable columns (`response`, `event_time`,...).
"""

from __future__ import annotations

import re

import pyarrow as pa

EVENTS_SCHEMA_VERSION = 1

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
EVENT_KEY_RE = re.compile(r"^runs/(?P<run>[^/]+)/events/(?P<step>\d{10})-(?P<part>\d{4})\.parquet$")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("epoch", pa.int32(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample", pa.int32(), nullable=False),
        pa.field("reward", pa.float32(), nullable=False),
        pa.field("correct", pa.bool_(), nullable=False),
        pa.field("response_tokens", pa.int32(), nullable=False),
    ],
    metadata={"limr.events.schema_version": str(EVENTS_SCHEMA_VERSION)},
)
REQUIRED_EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)

OPTIONAL_EVENT_FIELDS = {
    "response": pa.string(),
    "event_time": pa.timestamp("ms", tz="UTC"),
    "finish_reason": pa.string(),
    "weight_version": pa.int64(),
    # Extra per-sample numbers a correctness rule may name (verl's `acc`, one entry per TRL reward function).
    "scores": pa.map_(pa.string(), pa.float64()),
}

PROMPTS_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("answer", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=True),
    ]
)


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise ValueError(f"invalid run id {run_id!r}: use 1-128 of letters, digits, '.', '_' or '-'")
    return run_id


def run_prefix(run_id: str) -> str:
    return f"runs/{check_run_id(run_id)}/"


def run_json_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}run.json"


def prompts_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}prompts.parquet"


def finished_key(run_id: str) -> str:
    """The run-finished marker, written last by whoever writes the run (see limr.events.run)."""
    return f"{run_prefix(run_id)}_FINISHED"


def events_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}events/"


def metrics_prefix(run_id: str) -> str:
    """The learner's per-step metrics (`{step:010d}.json`, 1-based completed steps): training curves."""
    return f"{run_prefix(run_id)}metrics/"


def event_key(run_id: str, step: int, part: int) -> str:
    if not (0 <= step < 10**10 and 0 <= part < 10**4):
        raise ValueError(f"step {step} / part {part} out of range for the event key layout")
    return f"{events_prefix(run_id)}{step:010d}-{part:04d}.parquet"
