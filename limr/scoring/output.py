"""JSONL output of scores: one object per prompt, written fast enough for a million prompts."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from limr.scoring.result import ScoreResult


def score_lines(result: ScoreResult) -> Iterator[str]:
    """`{"prompt_id", "prompt", "score", "trajectory"}` per scored prompt, then one object per prompt left
    out (`score` and `trajectory` null, `left_out` the reason).

    Trajectory values are ratios of small counts, so there are few distinct ones: each is formatted once
    (Python's shortest round-trip repr, as `json` does) and looked up, instead of 20M float reprs.
    """
    dumps = json.dumps
    scores = result.scores.tolist()
    if result.trajectories is not None and result.trajectories.size:
        uniq, inv = np.unique(result.trajectories, return_inverse=True)
        reprs = np.array([repr(float(u)) for u in uniq], dtype=object)
        rows = reprs[inv.reshape(result.trajectories.shape)].tolist()
    else:
        rows = [None] * len(scores)
    prompts = result.prompts
    for pid, score, row in zip(result.prompt_ids, scores, rows, strict=True):
        traj = "null" if row is None else "[" + ", ".join(row) + "]"
        key, text = dumps(pid, ensure_ascii=False), dumps(prompts.get(pid), ensure_ascii=False)
        yield f'{{"prompt_id": {key}, "prompt": {text}, "score": {score!r}, "trajectory": {traj}}}\n'
    for pid, reason in result.left_out.items():
        yield (
            dumps(
                {"prompt_id": pid, "prompt": prompts.get(pid), "score": None, "trajectory": None, "left_out": reason},
                ensure_ascii=False,
            )
            + "\n"
        )
