"""Score a run in the store: stream its events objects into EpochCounts, then apply LIM."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from limr.events.correct import CorrectRule
from limr.events.io import (
    EventSchemaError,
    list_event_keys,
    read_events_object,
    read_prompts,
    validate_events_table,
)
from limr.events.run import read_run_meta
from limr.events.schema import events_prefix, prompts_key, run_json_key
from limr.scoring.counts import MAX_EPOCHS, EpochCounts, EventDataError, TableSummary, summarize_table
from limr.scoring.memory import keep_freed_memory
from limr.scoring.ordered import ordered_map
from limr.scoring.result import ScoreResult, score_counts
from limr.scoring.rule import apply_rule, rule_columns
from limr.store import ObjectNotFound, ObjectStore

SCORING_COLUMNS = ("prompt_id", "epoch", "correct", "reward")


class RunNotFound(LookupError):
    """No run of that id in the store."""


class EmptyRun(ValueError):
    """A run without any events objects."""


def read_summary(store: ObjectStore, key: str, rule: CorrectRule | None = None) -> TableSummary:
    """Read, check and reduce one events object: all the per-event work, safe to run in a reader thread.

    An object whose Parquet statistics say it holds a single epoch (the usual case: a step's rollouts) is
    counted without decoding its epoch column.
    """
    where = f"{store.uri}/{key}"
    pf = _open_events(store, key)
    epoch = _single_epoch(pf)
    columns = [c for c in SCORING_COLUMNS if not (c == "epoch" and epoch is not None)]
    columns += [c for c in rule_columns(rule) if c not in columns and c in pf.schema_arrow.names]
    try:
        table = pf.read(columns=columns, use_threads=False)
    except pa.ArrowException as e:
        raise EventSchemaError(f"{where}: not a readable Parquet file: {e}") from None
    check_rewards(table, where)
    return summarize_table(apply_rule(table, rule, where), where, epoch=epoch)


def _open_events(store: ObjectStore, key: str) -> pq.ParquetFile:
    where = f"{store.uri}/{key}"
    data = store.get(key)
    try:
        pf = pq.ParquetFile(pa.BufferReader(data), read_dictionary=["prompt_id"])
    except pa.ArrowException as e:
        raise EventSchemaError(f"{where}: not a readable Parquet file: {e}") from None
    validate_events_table(pf.schema_arrow, where)
    return pf


def _single_epoch(pf: pq.ParquetFile) -> int | None:
    """The one epoch of every row, when the statistics of all row groups say min == max and no nulls."""
    bounds = _epoch_bounds(pf.metadata)
    if not bounds or any(nulls != 0 for _, _, nulls in bounds) or len({b[:2] for b in bounds}) != 1:
        return None
    lo, hi, _ = bounds[0]
    return int(lo) if lo == hi and isinstance(lo, int) and 0 <= lo < MAX_EPOCHS else None


def _epoch_bounds(md: pq.FileMetaData) -> list[tuple[object, object, int | None]] | None:
    """(min, max, null count) of the `epoch` column per row group from Parquet statistics; None where any
    row group lacks them (or the file has no such column)."""
    try:
        paths = [md.schema.column(i).path for i in range(md.num_columns)]
        col = paths.index("epoch")
        out = []
        for i in range(md.num_row_groups):
            st = md.row_group(i).column(col).statistics
            if st is None or not st.has_min_max:
                return None
            out.append((st.min, st.max, st.null_count))
    except (pa.ArrowException, ValueError, TypeError):
        return None
    return out


def iter_event_summaries(
    store: ObjectStore,
    keys: list[str],
    threads: int | None = None,
    counts: EpochCounts | None = None,
    rule: CorrectRule | None = None,
) -> Iterator[tuple[str, TableSummary]]:
    """Reduce events objects in key order, up to `threads` ahead in a thread pool.

    Parquet decoding and the numpy reduction release the GIL, so on N cores the per-event work runs N-wide.
    Given the accumulator the summaries are for, the reader threads also look their ids up in it
    (`EpochCounts.locate`), leaving the caller's thread only the adding.
    """
    if counts is None:
        yield from ordered_map(lambda key: read_summary(store, key, rule), keys, threads)
    else:
        yield from ordered_map(lambda key: counts.locate(read_summary(store, key, rule)), keys, threads)


def check_rewards(table: pa.Table, where: str) -> None:
    """NaN rewards mean a broken reward pipeline: refuse them, naming the row.

    A dictionary-encoded column is checked on its dictionary (a handful of values) first.
    """
    if "reward" not in table.column_names:
        return
    reward = table.column("reward")
    if pa.types.is_dictionary(reward.type):
        if not any(pc.any(pc.is_nan(c.dictionary)).as_py() for c in reward.chunks):
            return
        reward = reward.cast(reward.type.value_type)
    if pc.any(pc.is_nan(reward)).as_py():
        row = int(np.flatnonzero(pc.is_nan(reward).to_numpy())[0])
        raise EventDataError(f"{where}: column 'reward' is NaN at row {row}")


def accumulate_run(
    store: ObjectStore,
    run_id: str,
    counts: EpochCounts | None = None,
    start_after: str | None = None,
    threads: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    keys: list[str] | None = None,
    rule: CorrectRule | None = None,
) -> tuple[EpochCounts, str | None, dict[int, str]]:
    """Add the run's events objects (after `start_after`, or exactly `keys`, in key order) to `counts`.

    Returns the counts, the last key read (a cursor for incremental scoring) and, for each object that
    introduced new prompt ids, the first new row index -> key (to name the object of an unknown id).
    `progress(done_events, done_objects, total_objects)` is called after each object. `rule` re-decides
    which samples are correct (None: the events' own `correct` column).
    """
    keep_freed_memory()  # per-object buffers are reused instead of page-faulted back in (see limr.scoring.memory)
    keys = sorted(keys) if keys is not None else list(list_event_keys(store, run_id, start_after=start_after))
    if counts is None:
        prompts_hint, epochs_hint = _expected_prompts(store, run_id), _last_epoch(store, keys)
        counts = EpochCounts(expected_prompts=prompts_hint, expected_epochs=epochs_hint)
    introduced: dict[int, str] = {}
    last = start_after
    summaries = iter_event_summaries(store, keys, threads=threads, counts=counts, rule=rule)
    for n_obj, (key, summary) in enumerate(summaries, start=1):
        before = counts.num_prompts
        counts.add_summary(summary)
        if counts.num_prompts > before:
            introduced[before] = key
        last = key
        if progress:
            progress(counts.events, n_obj, len(keys))
    return counts, last, introduced


def _expected_prompts(store: ObjectStore, run_id: str) -> int:
    """run.json's num_prompts, a capacity hint only (0 when absent or unreadable)."""
    try:
        n = read_run_meta(store, run_id).num_prompts if store.exists(run_json_key(run_id)) else None
    except (ValueError, ObjectNotFound):
        return 0
    return min(int(n or 0), 50_000_000)


def _last_epoch(store: ObjectStore, keys: list[str]) -> int:
    """1 + the largest epoch in the last events object (from its Parquet statistics), a capacity hint only."""
    if not keys:
        return 0
    try:
        bounds = _epoch_bounds(pq.ParquetFile(io.BytesIO(store.get(keys[-1]))).metadata)
        return min(max(int(hi) for _, hi, _ in bounds) + 1, 10_000) if bounds else 0  # type: ignore[call-overload]
    except (pa.ArrowException, OSError, ValueError, TypeError, ObjectNotFound):
        return 0


@dataclass
class RunCounts:
    """A whole run counted the way `limr score` counts it: what LIM scores are computed from."""

    run_id: str
    counts: EpochCounts
    prompts: dict[str, str]  # prompt id -> prompt text, from prompts.parquet (empty without one)

    def score(self, max_epochs: int | None = None, consume: bool = False) -> ScoreResult:
        """LIM over the first `max_epochs` epochs (all by default); `consume` frees the counts (one-shot use)."""
        return score_counts(self.counts, max_epochs, self.prompts, source=f"run {self.run_id}", consume=consume)


def score_run(
    store: ObjectStore,
    run_id: str,
    max_epochs: int | None = None,
    threads: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    correct: CorrectRule | None = None,
) -> ScoreResult:
    """LIM scores of a run. Raises RunNotFound, EmptyRun, EventSchemaError/EventDataError on bad objects."""
    run = count_run(store, run_id, threads=threads, progress=progress, correct=correct)
    return run.score(max_epochs, consume=True)


def count_run(
    store: ObjectStore,
    run_id: str,
    threads: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    keys: list[str] | None = None,
    correct: CorrectRule | None = None,
) -> RunCounts:
    """Count every events object of a run (or exactly `keys`) and check its ids against prompts.parquet.

    The one reading of a whole run that `limr score`, `limr select --run` and the scorer's final datasets share,
    so a finished run's final dataset equals `limr select --run` on the same events.
    """
    has_meta = store.exists(run_json_key(run_id))
    counts, _, introduced = accumulate_run(store, run_id, threads=threads, progress=progress, keys=keys, rule=correct)
    if counts.events == 0:
        if not has_meta and not store.list_keys(f"runs/{run_id}/"):
            raise RunNotFound(f"{store.uri}: no run {run_id!r} (no {run_json_key(run_id)}, no events)")
        raise EmptyRun(f"{store.uri}/{events_prefix(run_id)}: run {run_id!r} has no events")
    prompts: dict[str, str] = {}
    if store.exists(prompts_key(run_id)):
        records = read_prompts(store, run_id)
        prompts = {r.prompt_id: r.prompt for r in records}
        _check_known_ids(store, counts, prompts, introduced)
    return RunCounts(run_id, counts, prompts)


def _check_known_ids(
    store: ObjectStore, counts: EpochCounts, prompts: dict[str, str], introduced: dict[int, str]
) -> None:
    """Every event's prompt_id must be in prompts.parquet; name the object and row of the first that is not."""
    known = pa.array(list(prompts), pa.string())
    member = pc.is_in(counts.ids_array, value_set=known).to_numpy(zero_copy_only=False)
    if member.all():
        return
    row = int(np.flatnonzero(~member)[0])
    pid = counts.ids_array[row].as_py()
    starts = sorted(introduced)
    key = introduced[starts[int(np.searchsorted(starts, row, side="right")) - 1]]
    table = read_events_object(store, key, ("prompt_id",))
    at = int(np.flatnonzero(pc.equal(table.column("prompt_id").cast(pa.string()), pid).to_numpy())[0])
    raise EventSchemaError(
        f"{store.uri}/{key}: row {at}: unknown prompt_id {pid!r} (not in prompts.parquet;"
        f" {int((~member).sum())} unknown id(s) in the run)"
    )
