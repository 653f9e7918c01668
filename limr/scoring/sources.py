"""Scores from inputs other than a run in the store: OpenRLHF dumps and published score files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from limr.events.openrlhf import iter_steps, plan_steps, read_published_scores, step_table
from limr.scoring.counts import EpochCounts
from limr.scoring.result import ScoreResult, score_counts


def score_openrlhf(
    samples_dir: str | Path,
    steps_per_epoch: int,
    max_epochs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoreResult:
    """LIM scores straight from dumps, keyed by the hash of the stripped prompt text (no store involved)."""
    plan = plan_steps(samples_dir, steps_per_epoch, max_epochs)
    counts = EpochCounts()
    prompts: dict[str, str] = {}
    for samples in iter_steps(plan):
        table = step_table(samples)
        for pid, text in zip(table.column("prompt_id").to_pylist(), samples.prompts, strict=True):
            prompts.setdefault(pid, text.strip())
        counts.add_table(table, str(plan.files[samples.step]))
        if progress:
            progress(samples.step)
    result = score_counts(counts, max_epochs, source=f"OpenRLHF dumps {plan.directory}")
    result.prompts = prompts
    if plan.ignored_steps:
        result.source += f" (steps {plan.ignored_steps[0]}-{plan.ignored_steps[-1]} beyond the epochs used ignored)"
    return result


def score_published(path: str | Path) -> ScoreResult:
    pub = read_published_scores(path)
    return ScoreResult(
        prompt_ids=pub.prompt_ids,
        scores=pub.scores,
        trajectories=None,
        r_avg=None,
        epochs=0,
        prompts=dict(zip(pub.prompt_ids, pub.prompts, strict=True)),
        source=f"published scores {pub.path}",
    )


__all__ = ["score_openrlhf", "score_published"]
