"""ScoreResult: LIM scores of a set of prompts, whatever the input (a run, OpenRLHF dumps, published scores)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from limr.algo.lim import lim_from_accuracy
from limr.scoring.counts import EpochCounts


@dataclass
class ScoreResult:
    """Scores of the prompts kept (in first-seen order) and why the others were left out."""

    prompt_ids: list[str]  # (K,) kept prompts
    scores: np.ndarray  # (K,) LIM scores
    trajectories: np.ndarray | None  # (K, E) filled accuracy trajectories; None for published scores
    r_avg: np.ndarray | None  # (E,) average trajectory of the kept prompts
    epochs: int  # E, epochs scored
    left_out: dict[str, str] = field(default_factory=dict)  # prompt_id -> reason
    prompts: dict[str, str] = field(default_factory=dict)  # prompt_id -> prompt text, where known
    events: int = 0  # events counted
    source: str = ""  # what was scored, for messages

    def __len__(self) -> int:
        return len(self.prompt_ids)


def score_counts(
    counts: EpochCounts,
    max_epochs: int | None = None,
    prompts: dict[str, str] | None = None,
    source: str = "",
    consume: bool = False,
) -> ScoreResult:
    """Apply LIM to accumulated counts; prompts with an epoch still missing after gap filling are left out.

    `consume` lets the scores reuse the accumulator's memory (`EpochCounts.take_accuracy`), leaving it empty:
    for one-shot scoring of a large run.
    """
    ids = counts.ids_array
    events = counts.events
    prompts = dict(prompts or {})
    known = list(prompts)
    no_events = [known[i] for i in np.flatnonzero(counts.index_of(known) < 0)] if known else []
    acc = counts.take_accuracy() if consume else counts.accuracy()  # (P, E), ours: filled in place
    res = lim_from_accuracy(acc, max_epochs, overwrite=True)
    left_out: dict[str, str] = {}
    if not res.kept.all():
        filled = ~np.isnan(acc[:, : res.epochs])  # (P, E) after gap filling; a row never observed stays all NaN
        for row in np.flatnonzero(~res.kept):
            if not filled[row].any():
                left_out[ids[row].as_py()] = f"no samples in epochs 0-{res.epochs - 1}"
            else:
                missing = ", ".join(str(e) for e in np.flatnonzero(~filled[row]))
                left_out[ids[row].as_py()] = f"no samples in epoch(s) {missing}, not fillable from the next epoch"
        ids = ids.filter(pa.array(res.kept))
    for pid in no_events:
        left_out[pid] = "no events"
    return ScoreResult(
        prompt_ids=ids.to_pylist(),
        scores=res.scores,
        trajectories=res.trajectories,
        r_avg=res.r_avg,
        epochs=res.epochs,
        left_out=left_out,
        prompts=prompts,
        events=events,
        source=source,
    )
