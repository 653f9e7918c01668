"""How far a run is: the epochs that can no longer change, and the run's prompt pool in the store."""

from __future__ import annotations

from limr.events.io import EventSchemaError, PromptRecord, read_prompts
from limr.events.run import read_run_meta
from limr.scoring import EpochCounts
from limr.store import ObjectNotFound, ObjectStore


def complete_epochs(counts: EpochCounts, pool_size: int | None) -> int:
    """Epochs that can no longer change: every epoch below the newest one seen, and the newest one too
    once it has samples for every prompt of the pool (when the pool size is known)."""
    epochs = counts.num_epochs
    if epochs == 0:
        return 0
    if pool_size and int((counts.total[:, epochs - 1] > 0).sum()) >= pool_size:
        return epochs
    return epochs - 1


def read_run_prompts(store: ObjectStore, run_id: str) -> tuple[list[PromptRecord] | None, int | None]:
    """The run's prompt records (prompts.parquet) and pool size (run.json num_prompts, else those rows);
    None for what the store does not hold (yet): writers put run.json first and prompts.parquet next."""
    try:
        records: list[PromptRecord] | None = read_prompts(store, run_id)
    except (ObjectNotFound, EventSchemaError):
        records = None
    size = None
    try:
        size = read_run_meta(store, run_id).num_prompts
    except (ObjectNotFound, ValueError):
        pass
    return records, size or (len(records) if records else None)
