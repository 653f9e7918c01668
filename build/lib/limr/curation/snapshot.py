"""The per-run scores snapshot the query API serves: every prompt's score, reason left out and counts.

Written by the scorer after each rescore (one PUT, so readers see a whole table), read by the dataset API.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from limr.curation.checkpoint import RunState
from limr.scoring import ScoreResult
from limr.store import ObjectStore

SNAPSHOT_VERSION = "1"


def snapshot_key(state_prefix: str, run_id: str) -> str:
    return f"{state_prefix}/scores/{run_id}.parquet"


def write_scores_snapshot(store: ObjectStore, state_prefix: str, state: RunState, result: ScoreResult) -> None:
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
