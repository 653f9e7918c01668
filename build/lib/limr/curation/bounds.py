"""Bounds on what one events object may make the scorer allocate.

The counts are dense (prompts x epochs int32 pairs), so a single row with epoch 99,999 or an object naming
millions of unseen prompts would make a running scorer allocate without limit, and, once checkpointed, die
out of memory after every restart. Rows are checked against these bounds before they are counted; an object
that breaks one is quarantined with the reason (it is the object's fault), and nothing of it is counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from limr.scoring import EpochCounts, EventDataError

MAX_STEP = 10**10 - 1  # the widest step an event key can name ({step:010d})


class OutOfBounds(EventDataError):
    """Event rows outside the scorer's bounds (epoch, step, prompts, counts size)."""


@dataclass(frozen=True)
class Bounds:
    max_epochs: int  # epochs are 0-based and below this (and below run.json `epochs` when it says)
    max_prompts: int  # distinct prompts of one run
    max_cells: int  # prompts x epochs of one run's counts (8 bytes each)


def check_bounds(table: pa.Table, counts: EpochCounts, bounds: Bounds, planned_epochs: int | None, where: str) -> None:
    """Raise OutOfBounds when adding `table` to `counts` would leave the bounds."""
    if table.num_rows == 0:
        return
    lo, hi = (v.as_py() for v in pc.min_max(table.column("epoch")).values())
    limit = min(bounds.max_epochs, planned_epochs) if planned_epochs else bounds.max_epochs
    why = "run.json epochs" if planned_epochs and planned_epochs <= bounds.max_epochs else "the scorer's max_epochs"
    if lo < 0 or hi >= limit:
        raise OutOfBounds(f"{where}: epoch {lo if lo < 0 else hi} out of bounds [0, {limit}) ({why})")
    slo, shi = (v.as_py() for v in pc.min_max(table.column("step")).values())
    if slo < 0 or shi > MAX_STEP:
        raise OutOfBounds(f"{where}: step {slo if slo < 0 else shi} out of bounds [0, {MAX_STEP}]")
    ids = pc.unique(table.column("prompt_id").combine_chunks())
    if isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_decode()
    unseen = int((counts.index_of(ids) < 0).sum())
    prompts = counts.num_prompts + unseen
    if prompts > bounds.max_prompts:
        raise OutOfBounds(f"{where}: {prompts} distinct prompts in the run, over max_prompts {bounds.max_prompts}")
    epochs = max(counts.num_epochs, hi + 1)
    if prompts * epochs > bounds.max_cells:
        raise OutOfBounds(
            f"{where}: {prompts} prompts x {epochs} epochs = {prompts * epochs} counts,"
            f" over max_cells {bounds.max_cells}"
        )
