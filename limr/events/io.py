"""Write and read reward-event and prompt objects (Parquet, zstd) with schema checks that name the object."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from limr.events.attempts import read_attempts
from limr.events.schema import (
    EVENT_KEY_RE,
    EVENT_SCHEMA,
    OPTIONAL_EVENT_FIELDS,
    PROMPTS_SCHEMA,
    REQUIRED_EVENT_COLUMNS,
    event_key,
    events_prefix,
    prompts_key,
)
from limr.store import ObjectStore


class EventSchemaError(ValueError):
    """An events or prompts object that does not match the schema; the message names object and column."""


@dataclass(frozen=True)
class PromptRecord:
    prompt_id: str
    prompt: str
    answer: str
    source: str | None = None


def _to_parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    # Dictionary-encode prompt_id: readers then decode small integer codes, not 160M strings.
    pq.write_table(table, buf, compression="zstd", use_dictionary=["prompt_id", "run_id"], write_statistics=True)
    return buf.getvalue()


def events_table(
    run_id: str,
    step: int,
    epoch: Sequence[int] | pa.Array,
    prompt_id: Sequence[str] | pa.Array,
    sample: Sequence[int] | pa.Array,
    reward: Sequence[float] | pa.Array,
    correct: Sequence[bool] | pa.Array,
    response_tokens: Sequence[int] | pa.Array,
    **optional: Sequence[Any] | pa.Array,
) -> pa.Table:
    """Build an events table in the canonical schema; extra columns must be known optional fields."""
    n = len(prompt_id)
    cols = {
        "run_id": pa.array([run_id] * n, pa.string()),
        "step": pa.array([step] * n, pa.int64()),
        "epoch": pa.array(epoch, pa.int32()),
        "prompt_id": pa.array(prompt_id, pa.string()),
        "sample": pa.array(sample, pa.int32()),
        "reward": pa.array(reward, pa.float32()),
        "correct": pa.array(correct, pa.bool_()),
        "response_tokens": pa.array(response_tokens, pa.int32()),
    }
    fields = list(EVENT_SCHEMA)
    for name, values in optional.items():
        if name not in OPTIONAL_EVENT_FIELDS:
            raise ValueError(f"unknown optional event column {name!r}; known: {sorted(OPTIONAL_EVENT_FIELDS)}")
        cols[name] = pa.array(values, OPTIONAL_EVENT_FIELDS[name])
        fields.append(pa.field(name, OPTIONAL_EVENT_FIELDS[name], nullable=True))
    table = pa.table(cols, schema=pa.schema(fields, metadata=EVENT_SCHEMA.metadata))
    validate_events_table(table, f"events of run {run_id} step {step}")
    return table


def write_events(store: ObjectStore, run_id: str, step: int, part: int, table: pa.Table, attempt: int = 0) -> str:
    """Write one immutable events object; returns its key (`attempt`: limr.events.attempts)."""
    key = event_key(run_id, step, part, attempt)
    validate_events_table(table, key)
    store.put(key, _to_parquet_bytes(table), "application/vnd.apache.parquet")
    return key


def write_prompts(store: ObjectStore, run_id: str, prompts: Iterable[PromptRecord]) -> None:
    rows = list(prompts)
    table = pa.table(
        {
            "prompt_id": pa.array([p.prompt_id for p in rows], pa.string()),
            "prompt": pa.array([p.prompt for p in rows], pa.string()),
            "answer": pa.array([p.answer for p in rows], pa.string()),
            "source": pa.array([p.source for p in rows], pa.string()),
        },
        schema=PROMPTS_SCHEMA,
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    store.put(prompts_key(run_id), buf.getvalue(), "application/vnd.apache.parquet")


def read_prompts(store: ObjectStore, run_id: str) -> list[PromptRecord]:
    key = prompts_key(run_id)
    try:
        table = pq.read_table(io.BytesIO(store.get(key)))
    except pa.ArrowInvalid as e:
        raise EventSchemaError(f"{store.uri}/{key}: not a readable Parquet file: {e}") from None
    for field in PROMPTS_SCHEMA:
        if field.name not in table.column_names:
            if field.nullable:
                continue
            raise EventSchemaError(f"{store.uri}/{key}: missing column {field.name!r}")
        if not table.schema.field(field.name).type.equals(field.type):
            raise EventSchemaError(
                f"{store.uri}/{key}: column {field.name!r} has type {table.schema.field(field.name).type},"
                f" expected {field.type}"
            )
    d = table.to_pydict()
    sources = d.get("source") or [None] * table.num_rows
    rows = zip(d["prompt_id"], d["prompt"], d["answer"], sources, strict=True)
    return [PromptRecord(i, p, a, s) for i, p, a, s in rows]


def validate_events_table(table: pa.Table | pa.Schema, where: str) -> None:
    """Required columns present with the right types (dictionary-encoded strings accepted), no nulls."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    for field in EVENT_SCHEMA:
        if field.name not in schema.names:
            raise EventSchemaError(f"{where}: missing required column {field.name!r}")
        actual = schema.field(field.name).type
        if pa.types.is_dictionary(actual):
            actual = actual.value_type
        if pa.types.is_large_string(actual) and pa.types.is_string(field.type):
            continue
        if not actual.equals(field.type):
            raise EventSchemaError(f"{where}: column {field.name!r} has type {actual}, expected {field.type}")
    if isinstance(table, pa.Table):
        for name in REQUIRED_EVENT_COLUMNS:
            nulls = table.column(name).null_count
            if nulls:
                raise EventSchemaError(f"{where}: column {name!r} has {nulls} null value(s)")


def list_event_keys(store: ObjectStore, run_id: str, start_after: str | None = None) -> Iterator[str]:
    """The run's event object keys that count, in key order: foreign files under events/ are skipped, and so
    are objects a resumed attempt redid (limr.events.attempts)."""
    attempts = read_attempts(store, run_id)
    while True:  # a resume recorded during the listing: list again under the new record
        listed = store.list(events_prefix(run_id), start_after=start_after)
        keys = [i.key for i in listed if EVENT_KEY_RE.match(i.key)]
        now = read_attempts(store, run_id)
        if now == attempts:
            break
        attempts = now
    yield from attempts.effective(keys)


def read_events_object(store: ObjectStore, key: str, columns: Sequence[str] = REQUIRED_EVENT_COLUMNS) -> pa.Table:
    """Read selected columns of one events object, validating the schema; errors name the object.

    Optional columns the object does not have are left out (readers must not need them).
    """
    data = store.get(key)
    try:
        pf = pq.ParquetFile(io.BytesIO(data), read_dictionary=["prompt_id"])
        validate_events_table(pf.schema_arrow, f"{store.uri}/{key}")
        names = pf.schema_arrow.names
        wanted = [c for c in dict.fromkeys(columns) if c in names or c not in OPTIONAL_EVENT_FIELDS]
        table = pf.read(columns=wanted)
    except pa.ArrowException as e:
        raise EventSchemaError(f"{store.uri}/{key}: not a readable Parquet file: {e}") from None
    except KeyError as e:  # pyarrow's read_dictionary on a file without that column, before our own check runs
        raise EventSchemaError(f"{store.uri}/{key}: missing required column {e.args[0]!r}") from None
    return table
