"""Scoring: stream reward events into prompt x epoch counts and score them with LIM (limr.algo.lim)."""

from limr.scoring.counts import EpochCounts, EventDataError
from limr.scoring.result import ScoreResult, score_counts
from limr.scoring.run import EmptyRun, RunCounts, RunNotFound, accumulate_run, count_run, score_run

__all__ = [
    "EmptyRun",
    "EpochCounts",
    "EventDataError",
    "RunCounts",
    "RunNotFound",
    "ScoreResult",
    "accumulate_run",
    "count_run",
    "score_counts",
    "score_run",
]
