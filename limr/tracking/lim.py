"""The LIM picture of a run, for its tracker: scores from the run's events in the store, as `limr score` reads
them, drawn as the trajectories-vs-r_avg plot and the score histogram, with the headline numbers."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from limr.scoring import EmptyRun, EventDataError, count_run
from limr.store import ObjectStore
from limr.tracking.base import Tracker

log = logging.getLogger("limr.tracking")


def log_lim_picture(tracker: Tracker, store: ObjectStore, run_id: str, workdir: Path, step: int) -> None:
    """Score the run (every epoch) and log its LIM plots and figures; a run LIM cannot score yet (one epoch,
    no complete trajectory) logs nothing and says why in the log."""
    from limr.view.plots import plot_score_histogram, plot_trajectories

    try:
        result = count_run(store, run_id).score()
    except (EmptyRun, EventDataError, ValueError) as e:
        log.info("no LIM picture for run %s: %s", run_id, e)
        return
    if len(result) == 0 or result.trajectories is None or result.epochs < 2:
        log.info("no LIM picture for run %s: %d prompts scored over %d epochs", run_id, len(result), result.epochs)
        return
    workdir.mkdir(parents=True, exist_ok=True)
    scores = np.asarray(result.scores)  # (K,)
    sources = ["all"] * len(scores)
    plots = [
        plot_trajectories(result, workdir / f"{run_id}-lim-trajectories.png"),
        plot_score_histogram(scores, sources, 0.6, workdir / f"{run_id}-lim-scores.png", f"run {run_id}"),
    ]
    for path in plots:
        tracker.log_image(path)
    r_avg: list[float] = [] if result.r_avg is None else [float(x) for x in result.r_avg]
    figures = {f"lim/r_avg_epoch_{e + 1}": v for e, v in enumerate(r_avg)}
    figures |= {"lim/prompts_scored": float(len(scores)), "lim/kept_at_0.6": float((scores >= 0.6).sum())}
    tracker.log_metrics(figures, step)
