"""Scores from inputs other than a run in the store: a trainer's dumps and published score files."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from limr.events.correct import CorrectRule
from limr.importers import dump_format, import_dump
from limr.importers.openrlhf import read_published_scores
from limr.scoring.result import ScoreResult
from limr.scoring.run import count_run
from limr.store import LocalStore


def score_dump(
    fmt: str,
    samples_dir: str | Path,
    steps_per_epoch: int,
    max_epochs: int | None = None,
    correct: str | CorrectRule | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoreResult:
    """LIM scores straight from dumps, keyed by the hash of the stripped prompt text.

    The dumps go through the importer into a scratch store and are counted as `limr score` counts a run,
    so scoring a dump and scoring its import are one code path.
    """
    with tempfile.TemporaryDirectory(prefix="limr-dump-") as tmp:
        store = LocalStore(tmp)
        summary = import_dump(
            store, dump_format(fmt), samples_dir, "dump", steps_per_epoch, None, correct, None, progress
        )
        result = count_run(store, "dump").score(max_epochs, consume=True)
    result.source = f"{fmt} dumps {Path(samples_dir)}"
    if summary.ignored_steps:
        result.source += (
            f" (steps {summary.ignored_steps[0]}-{summary.ignored_steps[-1]} of an incomplete epoch ignored)"
        )
    return result


def score_openrlhf(
    samples_dir: str | Path,
    steps_per_epoch: int,
    max_epochs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoreResult:
    """`score_dump` of LIMR's OpenRLHF `step_N.json` dumps."""
    return score_dump("openrlhf", samples_dir, steps_per_epoch, max_epochs, None, progress)


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


__all__ = ["score_dump", "score_openrlhf", "score_published"]
