"""The prompts a selection picks from a ScoreResult: the one place `rand` and `lim`/`linear` rows become ids.

`limr select`, the scorer's automatic publishing and the dataset API's publish endpoint all go through
`select_prompts`, so a published version always equals `limr select` with the same options.
"""

from __future__ import annotations

from collections.abc import Sequence

from limr.algo.selection import Criterion, Selection, select
from limr.scoring import ScoreResult


def select_prompts(
    result: ScoreResult,
    strategy: str,
    crit: Criterion,
    *,
    seed: int = 0,
    pool_ids: Sequence[str] | None = None,
) -> tuple[Selection, list[str]]:
    """The selection and the prompt ids it picks, in the order of their candidates.

    `rand` samples uniformly among the pool's ids (`pool_ids`, every prompt the run could train on, as the
    released script samples its dataset) or, without a pool, among the scored prompts; `lim` and `linear`
    pick among the scored prompts (`result.prompt_ids`).
    """
    candidates = list(pool_ids) if pool_ids else result.prompt_ids
    chosen = select(
        strategy,
        crit,
        scores=result.scores,
        trajectories=result.trajectories,
        rand_candidates=len(candidates),
        seed=seed,
    )
    source = candidates if strategy == "rand" else result.prompt_ids
    return chosen, [source[i] for i in chosen.rows]
