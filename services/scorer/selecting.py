"""From accumulated counts to LIM scores, selections and the per-run scores snapshot the query API serves.

Thin glue over the core (`limr.algo.lim`, `limr.algo.selection`, `limr.scoring`): the scorer scores the
completed epochs of its in-memory EpochCounts with exactly the functions `limr score/select` use, so a
published version equals `limr select` on the same events.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from limr.algo.selection import Criterion, select
from limr.events.io import EventSchemaError, PromptRecord, read_prompts
from limr.events.run import read_run_meta
from limr.scoring import EpochCounts, ScoreResult
from limr.scoring import score_counts as core_score_counts
from limr.store import ObjectNotFound, ObjectStore
from services.scorer.policy import SelectionPolicy

SNAPSHOT_VERSION = "1"


def counts_shape(counts: EpochCounts) -> tuple[int, int]:
    """(prompts, epochs) seen so far."""
    return tuple(counts.total.shape)  # type: ignore[return-value]


def complete_epochs(counts: EpochCounts, pool_size: int | None) -> int:
    """Epochs that can no longer change: every epoch below the newest one seen, and the newest one too
    once it has samples for every prompt of the pool (when the pool size is known)."""
    prompts, epochs = counts_shape(counts)
    if epochs == 0:
        return 0
    if pool_size and int((counts.total[:, epochs - 1] > 0).sum()) >= pool_size:
        return epochs
    return epochs - 1


def score_counts(counts: EpochCounts, epochs: int) -> ScoreResult:
    """LIM over the first `epochs` epochs of `counts` (the core's scoring, as `limr score` does it)."""
    return core_score_counts(counts, max_epochs=epochs)


def select_prompt_ids(result: ScoreResult, policy: SelectionPolicy, pool_ids: list[str] | None = None) -> list[str]:
    """The prompt ids `limr select` would pick with the same options.

    As in `limr select`, `rand` samples rows of the prompt pool (`pool_ids`, the run's prompts.parquet) when
    there is one, else among the scored prompts; lim/linear pick among the scored prompts.
    """
    crit = Criterion(threshold=policy.threshold, top_k=policy.top_k, fraction=policy.fraction)
    candidates = pool_ids if pool_ids else result.prompt_ids
    chosen = select(
        policy.strategy,
        crit,
        scores=result.scores,
        trajectories=result.trajectories,
        rand_candidates=len(candidates),
        seed=policy.seed,
    )
    if policy.strategy == "rand":
        return [candidates[i] for i in chosen.rows]
    return [result.prompt_ids[i] for i in chosen.rows]


def snapshot_key(state_prefix: str, run_id: str) -> str:
    return f"{state_prefix}/scores/{run_id}.parquet"


def write_scores_snapshot(store: ObjectStore, state_prefix: str, state, result: ScoreResult) -> None:  # noqa: ANN001
    """Every prompt of the run: score (null when left out), raw per-epoch counts and accuracy."""
    ids = state.counts.ids
    epochs = result.epochs
    correct = np.asarray(state.counts.correct)[:, :epochs]  # (P, E)
    total = np.asarray(state.counts.total)[:, :epochs]  # (P, E)
    score_of = dict(zip(result.prompt_ids, (float(s) for s in result.scores), strict=True))
    table = pa.table(
        {
            "prompt_id": pa.array(ids, pa.string()),
            "score": pa.array([score_of.get(pid) for pid in ids], pa.float64()),
            "left_out": pa.array([result.left_out.get(pid) for pid in ids], pa.string()),
            "correct": pa.array(correct.tolist(), pa.list_(pa.int64())),
            "total": pa.array(total.tolist(), pa.list_(pa.int64())),
        },
        schema=pa.schema(
            [
                pa.field("prompt_id", pa.string()),
                pa.field("score", pa.float64()),
                pa.field("left_out", pa.string()),
                pa.field("correct", pa.list_(pa.int64())),
                pa.field("total", pa.list_(pa.int64())),
            ],
            metadata={
                "limr.scores.version": SNAPSHOT_VERSION,
                "run_id": state.run_id,
                "epochs": str(epochs),
                "r_avg": ",".join(repr(float(x)) for x in (result.r_avg if result.r_avg is not None else [])),
            },
        ),
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    store.put(snapshot_key(state_prefix, state.run_id), buf.getvalue(), "application/vnd.apache.parquet")


def read_scores_snapshot(store: ObjectStore, state_prefix: str, run_id: str) -> pa.Table:
    return pq.read_table(io.BytesIO(store.get(snapshot_key(state_prefix, run_id))))


def load_pool(store: ObjectStore, run_id: str) -> tuple[list[PromptRecord] | None, int | None]:
    """The run's prompt records (prompts.parquet) and pool size (run.json num_prompts, else those rows)."""
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
