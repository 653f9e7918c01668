"""Scoring: stream reward events into prompt x epoch counts and score them with LIM (limr.algo.lim)."""

from limr.scoring.counts import EpochCounts
from limr.scoring.result import ScoreResult, score_counts
from limr.scoring.run import EmptyRun, RunCounts, RunNotFound, accumulate_run, count_run, score_run
from limr.scoring.tables import EventDataError

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
