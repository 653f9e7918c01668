"""What a learner run records in the store: run.json and prompts.parquet at its start, one reward event per rollout
sample (part `rank` of the step, in the core events layout), the finish marker at its end; and, on resume, the
record of the new attempt (limr.events.attempts). (Per-step metrics: limr.events.metrics.)"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch

from limr.events.attempts import record_resume
from limr.events.run import RunMeta, read_run_meta, write_run_meta
from limr.events.schema import finished_key
from limr.learner.batch import Rollout
from limr.learner.config import LearnerConfig
from limr.learner.dist import DistCtx
from limr.learner.setup import RunSetup
from limr.tracking import Tracker, open_tracker
from limr.tracking.lim import log_lim_picture

log = logging.getLogger("limr.learner")


def write_step_events(
    setup: RunSetup,
    step: int,
    epoch: int,
    rank: int,
    indices: list[int],
    rollouts: list[Rollout],
    scores: torch.Tensor,
    correct: list[bool],
) -> str | None:
    """Write this rank's events of `step` (0-based) through the run's EventWriter; `rollouts[i].prompt_index`
    indexes `indices`. `correct` is the grader's verdict (the learner decides it, not a rule on rewards)."""
    if not rollouts:
        return None
    ids = setup.texts.ids
    return setup.events.write_step(
        step,
        [ids[indices[r.prompt_index]] for r in rollouts],
        scores.tolist(),
        epoch=epoch,
        correct=correct,
        response_tokens=[len(r.response_token_ids) for r in rollouts],
        responses=[r.text for r in rollouts],
        samples=[r.sample for r in rollouts],
        part=rank,
        finish_reason=[r.finish_reason for r in rollouts],
        weight_version=[r.weight_version for r in rollouts],
    )


def write_run_start(setup: RunSetup) -> None:
    """run.json and prompts.parquet, the first objects of a run (rank 0, fresh runs only)."""
    setup.events.start()


def open_tracking(cfg: LearnerConfig, setup: RunSetup) -> Tracker | None:
    """Rank 0: the run's experiment-tracker run (`metrics.tracking`), named and tagged with the limr run id,
    with the config logged; run.json records the tracker's run (`tracking`), so the store leads to it."""
    if not cfg.metrics.tracking:
        return None
    tracker = open_tracker(cfg.metrics.tracking, setup.run_id, experiment=cfg.name)
    tracker.log_params(cfg.model_dump(mode="json"))
    meta = read_run_meta(setup.store, setup.run_id).model_dump(mode="json")
    write_run_meta(setup.store, RunMeta.model_validate({**meta, "tracking": tracker.info.model_dump()}))
    log.info("tracking run %s in %s (%s run %s)", setup.run_id, tracker.info.uri, tracker.info.backend,
             tracker.info.run_id)  # fmt: skip
    return tracker


def track_step(tracker: Tracker | None, metrics: dict[str, float], step: int) -> None:
    """One step's metrics to the tracker; a tracker that fails mid-run is logged, never fatal to training."""
    if tracker is None:
        return
    try:
        tracker.log_metrics(metrics, step)
    except Exception as e:  # noqa: BLE001 - the tracker's transport (HTTP, disk) must not stop the run
        log.warning("tracker: step %d not logged: %s", step, e)


def close_tracking(tracker: Tracker | None, setup: RunSetup, step: int, failed: bool = False) -> None:
    """End the tracker run; a finished one first gets the run's LIM picture (scored from its events)."""
    if tracker is None:
        return
    if not failed:
        with tempfile.TemporaryDirectory(prefix="limr-lim-") as tmp:
            log_lim_picture(tracker, setup.store, setup.run_id, Path(tmp), step)
    tracker.close(failed=failed)


def write_run_finish(setup: RunSetup, ctx: DistCtx) -> None:
    """Mark the run finished (the scorer then publishes its final datasets), once every rank has written
    its last step's events: a barrier first, then rank 0 writes the marker, the run's last object."""
    ctx.barrier()
    if ctx.is_main:
        total = setup.derived.total_steps
        epochs = setup.plan.for_step(total - 1).epoch + 1 if total else 0
        setup.events.finish(epochs, steps=total)
        log.info("run %s finished after %d steps (%d epochs)", setup.run_id, total, epochs)


def open_run(setup: RunSetup, ctx: DistCtx, start: int, resumed: bool) -> None:
    """Every rank, before the first step. A fresh run: rank 0 writes run.json and prompts.parquet. A resumed one
    (with any number of workers): rank 0 removes the finish marker (finished only when this attempt ends), then
    records the new attempt and the step it starts at (limr.events.attempts); every rank writes its events
    under that attempt's keys, and the events a crashed attempt wrote for steps at or after `start` no longer
    count for any reader: the run counts exactly one event per sample, whatever the ranks before and now."""
    attempt = 0
    if not ctx.is_main or resumed:
        setup.events.attach()  # run.json and prompts.parquet are rank 0's, written once
    if ctx.is_main:
        if not resumed:
            write_run_start(setup)
        else:
            # The marker goes first, so a scorer that sees the resume record never reads the old attempt's marker.
            setup.store.delete(finished_key(setup.run_id))
            attempt = record_resume(setup.store, setup.run_id, start, ctx.world_size)
            log.info("run %s: attempt %d from step %d", setup.run_id, attempt, start)
    setup.attempt = int(ctx.broadcast_object(attempt))  # (a barrier too)
    setup.events.attempt = setup.attempt
