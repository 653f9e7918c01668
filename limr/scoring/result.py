"""ScoreResult: LIM scores of a set of prompts, whatever the input (a run, OpenRLHF dumps, published scores)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from limr.algo.lim import fill_missing_epochs, lim_from_accuracy
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
    counts: EpochCounts, max_epochs: int | None = None, prompts: dict[str, str] | None = None, source: str = ""
) -> ScoreResult:
    """Apply LIM to accumulated counts; prompts with an epoch still missing after gap filling are left out."""
    acc = counts.accuracy()  # (P, E)
    res = lim_from_accuracy(acc, max_epochs)
    ids = counts.ids
    kept_rows = np.flatnonzero(res.kept)
    left_out: dict[str, str] = {}
    if not res.kept.all():
        window = acc[:, : res.epochs]
        observed = ~np.isnan(window)
        for row in np.flatnonzero(~res.kept):
            if not observed[row].any():
                left_out[ids[row]] = f"no samples in epochs 0-{res.epochs - 1}"
            else:
                filled_missing = np.isnan(fill_missing_epochs(window[row][None, :])[0])
                missing = ", ".join(str(e) for e in np.flatnonzero(filled_missing))
                left_out[ids[row]] = f"no samples in epoch(s) {missing}, not fillable from the next epoch"
    prompts = dict(prompts or {})
    if prompts:
        known = list(prompts)
        for i in np.flatnonzero(counts.index_of(known) < 0):
            left_out[known[i]] = "no events"
    return ScoreResult(
        prompt_ids=[ids[r] for r in kept_rows],
        scores=res.scores,
        trajectories=res.trajectories,
        r_avg=res.r_avg,
        epochs=res.epochs,
        left_out=left_out,
        prompts=prompts,
        events=counts.events,
        source=source,
    )
